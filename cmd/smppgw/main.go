// Command smppgw is the SMPP gateway daemon.
package main

import (
	"fmt"
	"os"
)

const usage = `smppgw: an SMPP 3.4 gateway (SMSC and ESME roles, gRPC/REST API).

Usage:
  smppgw serve [--config FILE]   run the gateway
  smppgw help                    show this text
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Print(usage)
		return
	}
	switch os.Args[1] {
	case "serve":
		// The daemon is being built issue by issue; say so rather than pretend to serve.
		fmt.Fprintln(os.Stderr, "smppgw serve: the SMSC server is not built yet; this build has the SMPP wire codec (pdu/) only")
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "smppgw: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
