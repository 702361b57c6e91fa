package bench

import (
	"fmt"
	"net"
	"os"

	"github.com/smppgw/smppgw/internal/bare"
)

// childEnv, when set in the environment, makes Child run this executable as the role it names
// instead of the bench: "bare" is the bare responder.
const childEnv = "SMPPBENCH_CHILD"

// Child runs this process as a bench child when the environment asks for one, and then exits; it
// returns at once otherwise. Mains (and TestMain) call it first.
func Child() {
	switch os.Getenv(childEnv) {
	case "":
		return
	case "bare":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bare responder:", err)
			os.Exit(1)
		}
		fmt.Printf("listening %s\n", ln.Addr())
		_ = bare.Serve(ln) // until the bench stops us
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: unknown role\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}
