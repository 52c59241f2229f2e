// Command hello is the cold-start baseline of the benchmarks: the least a Go
// function on FC's custom runtime can be, a bare net/http server on the port
// FC gives that answers every request with a fixed body.
package main

import (
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("FC_SERVER_PORT")
	if port == "" {
		port = "9000"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("hello\n"))
	})
	log.Fatal(http.ListenAndServe(net.JoinHostPort("0.0.0.0", port), nil))
}
