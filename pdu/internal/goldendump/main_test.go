package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWiresharkDissectsGolden turns every golden file into a pcap and has Wireshark's SMPP dissector,
// an implementation independent of ours and of fiorix's, read it: no packet may be malformed, and each
// file's commands must be recognised. .ci/run installs tshark; run with -short to skip it elsewhere.
func TestWiresharkDissectsGolden(t *testing.T) {
	out := t.TempDir()
	if err := run(filepath.Join("..", "..", "testdata", "golden"), out); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"text2pcap", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testing.Short() {
				t.Skipf("%s not installed (-short)", tool)
			}
			t.Fatalf("%s not installed: apt-get install tshark (or run with -short)", tool)
		}
	}
	want := map[string][]string{
		"bind_transceiver":        {"Bind_transceiver", "Bind_transceiver - resp"},
		"submit_sm":               {"Submit_sm", "Submit_sm - resp"},
		"deliver_sm_receipt":      {"Deliver_sm", "Deliver_sm - resp"},
		"submit_sm_multipart_udh": {"Submit_sm"},
		"session":                 {"Enquire_link", "Enquire_link - resp", "Unbind", "Unbind - resp", "Generic_nack"},
	}
	txts, _ := filepath.Glob(filepath.Join(out, "*.txt"))
	if len(txts) != len(want) {
		t.Fatalf("%d dumps, want %d", len(txts), len(want))
	}
	for _, txt := range txts {
		name := strings.TrimSuffix(filepath.Base(txt), ".txt")
		pcap := strings.TrimSuffix(txt, ".txt") + ".pcap"
		if b, err := exec.Command("text2pcap", "-q", "-T", "40000,2775", txt, pcap).CombinedOutput(); err != nil {
			t.Fatalf("text2pcap %s: %v\n%s", name, err, b)
		}
		cmd := exec.Command("tshark", "-r", pcap, "-d", "tcp.port==2775,smpp", "-O", "smpp")
		cmd.Env = append(os.Environ(), "HOME="+out)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", name, err)
		}
		dissection := string(b)
		if strings.Contains(dissection, "Malformed") || strings.Contains(dissection, "Expert Info") {
			t.Errorf("%s: Wireshark flags a problem:\n%s", name, dissection)
		}
		for _, op := range want[name] {
			if !strings.Contains(dissection, "Operation: "+op+" (") {
				t.Errorf("%s: Wireshark did not see %q", name, op)
			}
		}
	}
}
