package load

import (
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"
)

// ProgressBar returns a Config.Progress that draws a live bar on w (a terminal): messages out of
// Config.Messages (a spinner when unbounded), with acknowledgements, errors and receipts beside it.
// The bar is cleared at the end, so that the closing table follows on a clean line.
func ProgressBar(w io.Writer, total int) func(Progress) {
	max := int64(total)
	if max <= 0 {
		max = -1
	}
	bar := progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(0),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("msg"),
		progressbar.OptionShowIts(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)
	return func(p Progress) {
		bar.Describe(fmt.Sprintf("acked %d  errors %d  receipts %d", p.Acked, p.Errors, p.Receipts))
		_ = bar.Set64(p.Messages)
		if p.Done {
			_ = bar.Finish()
			_ = bar.Clear()
		}
	}
}
