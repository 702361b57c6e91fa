// Command goldendump writes every golden PDU of pdu/testdata/golden as a text2pcap hex dump, one
// packet per PDU, so that Wireshark's SMPP dissector can be pointed at them:
//
//	go run ./pdu/internal/goldendump -out /tmp/golden
//	text2pcap -T 40000,2775 /tmp/golden/submit_sm.txt /tmp/submit_sm.pcap
//	tshark -r /tmp/submit_sm.pcap -d tcp.port==2775,smpp -V
//
// scripts/golden-hexdump.sh runs all three steps when text2pcap and tshark are installed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/internal/hexfile"
)

func main() {
	in := flag.String("in", "pdu/testdata/golden", "folder of annotated .hex golden files")
	out := flag.String("out", "", "folder to write the text2pcap dumps into (required)")
	flag.Parse()
	if *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*in, *out); err != nil {
		log.Fatal(err)
	}
}

func run(in, out string) error {
	files, err := filepath.Glob(filepath.Join(in, "*.hex"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no golden files in %s: %v", in, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, name := range files {
		wire, err := hexfile.Read(name)
		if err != nil {
			return err
		}
		var dump bytes.Buffer
		for n := 0; len(wire) > 0; n++ {
			if len(wire) < pdu.HeaderLen {
				return fmt.Errorf("%s: %d stray octets after PDU %d", name, len(wire), n)
			}
			h := pdu.ParseHeader(wire)
			if int(h.Length) > len(wire) || h.Length < pdu.HeaderLen {
				return fmt.Errorf("%s: PDU %d: command_length %d does not fit", name, n, h.Length)
			}
			fmt.Fprintf(&dump, "# %s sequence %d\n", h.ID, h.Sequence)
			writePacket(&dump, wire[:h.Length])
			wire = wire[h.Length:]
		}
		dst := filepath.Join(out, strings.TrimSuffix(filepath.Base(name), ".hex")+".txt")
		if err := os.WriteFile(dst, dump.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Println(dst)
	}
	return nil
}

// writePacket writes one packet in the od -Ax -tx1 layout text2pcap reads: an offset, then 16 octets.
func writePacket(w *bytes.Buffer, p []byte) {
	for off := 0; off < len(p); off += 16 {
		fmt.Fprintf(w, "%06x", off)
		for _, c := range p[off:min(off+16, len(p))] {
			fmt.Fprintf(w, " %02x", c)
		}
		w.WriteByte('\n')
	}
	w.WriteByte('\n')
}
