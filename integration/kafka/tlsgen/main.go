// Command tlsgen writes the test broker's certificates: a fresh CA, a
// server certificate for 127.0.0.1, ::1 and localhost (also as Kafka's
// PEM keystore) and a client certificate, as PEM files in a directory.
//
//	go run ./integration/kafka/tlsgen -dir /tmp/eddy-services/kafka/tls
//
// scripts/services.sh runs it before it starts the broker; see package
// integration/kafka/secure for the files and the listeners that use them.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/eddy-streams/eddy/integration/kafka/secure"
)

func main() {
	dir := flag.String("dir", "", "directory to write the PEM files to (required)")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: tlsgen -dir DIR")
		os.Exit(2)
	}
	if err := secure.WriteFiles(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "tlsgen:", err)
		os.Exit(1)
	}
}
