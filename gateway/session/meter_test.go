package session

import (
	"testing"

	"github.com/smppgw/smppgw/pdu"
)

func TestCommandIndexNamesEveryCommand(t *testing.T) {
	for i, id := range countedCommands {
		if i == 0 {
			continue
		}
		if got := commandIndex(id); got != i {
			t.Errorf("commandIndex(%v) = %d, want %d", id, got, i)
		}
		if id != pdu.GenericNackID && id != pdu.OutbindID && id != pdu.AlertNotificationID {
			if got := commandIndex(id.Response()); got != i {
				t.Errorf("commandIndex(%v) = %d, want %d", id.Response(), got, i)
			}
		}
	}
	if commandIndex(0x00000010) != 0 || commandIndex(0x80000222) != 0 {
		t.Error("an unknown command id is not index 0")
	}
	for j, st := range countedStatuses {
		if statusIndex(st) != j {
			t.Errorf("statusIndex(%v) = %d, want %d", st, statusIndex(st), j)
		}
	}
	if statusIndex(pdu.ESME_RINVPASWD) != NumStatuses-1 {
		t.Error("an uncounted status is not the last index")
	}
}
