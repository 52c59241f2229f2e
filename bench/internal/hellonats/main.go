// Command hellonats is the cold-start baseline of buy's intake: the least a
// Go function that takes work onto NATS JetStream can be. It connects to
// NATS_URL at start, and answers every request, on the port FC gives, with
// 202 after one JetStream API call (the account's info) — a bare net/http
// server plus the client, the connection and one round trip the intake
// cannot do without.
package main

import (
	"log"
	"net"
	"net/http"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	port := os.Getenv("FC_SERVER_PORT")
	if port == "" {
		port = "9000"
	}
	nc, err := nats.Connect(os.Getenv("NATS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := js.AccountInfo(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("accepted\n"))
	})
	log.Fatal(http.ListenAndServe(net.JoinHostPort("0.0.0.0", port), nil))
}
