// examples/visits-go/main.go
//
// An nx_sandbox example app in Go: a net/http server that counts the
// visits to "/" in its sandbox's own database with github.com/lib/pq, a
// pure-Go driver, so the binary is static (CGO_ENABLED=0) and needs
// nothing from the host. Build it with Debian's Go and Debian's lib/pq,
// without network access: see build.sh.
//
// It listens on 127.0.0.1:$PORT (the router's connections arrive there,
// through nx-init) and connects with $DATABASE_URL, which nx_sandbox sets
// to postgresql://nx_<sandbox>:<password>@/nx_<sandbox>?host=<socket
// directory>&port=<port>; without it, lib/pq reads PGHOST, PGUSER, ... A
// visit runs one statement,
//
//	INSERT INTO visits (page, count) VALUES ('/', 1)
//	ON CONFLICT (page) DO UPDATE SET count = visits.count + 1 ... RETURNING count
//
// database/sql keeps a small pool and replaces connections that broke; a
// statement that failed on a broken connection is run once more.
package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lib/pq"
)

const createTable = `CREATE TABLE IF NOT EXISTS visits (
	page text PRIMARY KEY,
	count bigint NOT NULL,
	last_visit timestamptz NOT NULL DEFAULT now())`

const countVisit = `INSERT INTO visits (page, count) VALUES ('/', 1)
	ON CONFLICT (page) DO UPDATE SET count = visits.count + 1, last_visit = now()
	RETURNING count`

// app holds the database handle and whether the table was made.
type app struct {
	db        *sql.DB
	mu        sync.Mutex
	haveTable bool
}

// ensureTable creates the table once per process (again after a failure).
func (a *app) ensureTable(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.haveTable {
		return nil
	}
	if _, err := a.db.ExecContext(ctx, createTable); err != nil {
		return err
	}
	a.haveTable = true
	return nil
}

// brokenConnection reports whether err means the connection is gone (the
// statement did not commit), as opposed to an error of the statement.
func brokenConnection(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		// the server ended the session: 57P01 admin_shutdown (also
		// pg_terminate_backend), 57P02 crash_shutdown, 08xxx connection
		return pqErr.Code.Class() == "57" || pqErr.Code.Class() == "08"
	}
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.As(err, &netErr)
}

// count adds one visit and returns the new count.
func (a *app) count(ctx context.Context) (int64, error) {
	var n int64
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if err = a.ensureTable(ctx); err == nil {
			err = a.db.QueryRowContext(ctx, countVisit).Scan(&n)
		}
		if err == nil || !brokenConnection(err) {
			break
		}
		log.Printf("visits-go: lost the database connection (%v); retrying", err)
	}
	return n, err
}

// ServeHTTP answers GET / with the count, /healthz with ok, else 404/405.
func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case r.URL.Path == "/healthz":
		fmt.Fprintln(w, "ok")
	case r.URL.Path != "/":
		http.Error(w, "not found", http.StatusNotFound)
	case r.Method == http.MethodHead:
		// HEAD does not count
	default:
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		n, err := a.count(ctx)
		if err != nil {
			if r.Context().Err() != nil {
				return // the client went away; nothing to answer
			}
			log.Printf("visits-go: counting failed: %v", err)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "visits: %d\n", n)
	}
}

func main() {
	log.SetFlags(0)
	port, err := strconv.Atoi(os.Getenv("PORT"))
	if err != nil || port < 1 || port > 65535 {
		log.Fatal("visits-go: PORT must be a port number (nx_sandbox sets it)")
	}
	// lib/pq takes the URL as it is, socket directory in ?host= included
	// (and uses no TLS on a unix socket); "" means the PG* variables
	db, err := sql.Open("postgres", os.Getenv("DATABASE_URL")) // connects lazily
	if err != nil {
		log.Fatalf("visits-go: %v", err)
	}
	// the sandbox role has a connection limit (20 by default)
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)

	srv := &http.Server{
		Addr:              net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Handler:           &app{db: db},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		log.Fatalf("visits-go: listen: %v", err)
	}
	log.Printf("visits-go: listening on %s", srv.Addr)

	// SIGTERM (nx-init forwards it at stop): finish open requests, then exit
	done := make(chan struct{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		close(done)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		log.Fatalf("visits-go: %v", err)
	}
	<-done
	db.Close()
	log.Print("visits-go: stopped")
}
