package fakeupstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
)

// memoryNetwork serves a Server over net.Pipe connections. Everything it
// blocks on is a channel, so goroutines waiting on it are durably blocked in
// a testing/synctest bubble and fake time can advance; a loopback socket
// would keep the bubble busy forever.
type memoryNetwork struct {
	listener  *pipeListener
	server    *http.Server
	transport *http.Transport
	done      chan struct{}
}

func newMemoryNetwork(h http.Handler) *memoryNetwork {
	l := &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	m := &memoryNetwork{
		listener: l,
		server:   &http.Server{Handler: h},
		transport: &http.Transport{
			DialContext:         l.dial,
			MaxIdleConnsPerHost: 64,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		_ = m.server.Serve(l)
	}()
	return m
}

func (m *memoryNetwork) close() {
	_ = m.server.Close()
	<-m.done
	m.transport.CloseIdleConnections()
}

// pipeListener hands the server end of each dialled pipe to http.Server.
type pipeListener struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		_ = server.Close()
		_ = client.Close()
		return nil, errors.New("fakeupstream: in-memory server is closed")
	case <-ctx.Done():
		_ = server.Close()
		_ = client.Close()
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "fakeupstream.invalid:80" }
