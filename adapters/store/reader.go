package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// exactReader yields exactly size bytes of r. It fails with an error
// wrapping ErrShortBody (and io.ErrUnexpectedEOF) when r ends early, and
// with one wrapping ErrShortBody when r holds more: it looks one byte
// past the end before handing over the last bytes, so a consumer never
// reaches size bytes from a reader that is too long. With size < 0 it
// passes r through.
type exactReader struct {
	r    io.Reader
	size int64 // announced size; < 0 when unknown
	n    int64 // bytes handed over
	err  error // sticky
}

func newExactReader(r io.Reader, size int64) *exactReader {
	return &exactReader{r: r, size: size}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.size < 0 {
		n, err := e.r.Read(p)
		e.n += int64(n)
		if err != nil {
			e.err = err
		}
		return n, err
	}
	rem := e.size - e.n
	if rem == 0 {
		e.err = e.checkEnd()
		return 0, e.err
	}
	if int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := e.r.Read(p)
	e.n += int64(n)
	if e.n == e.size && n > 0 {
		if e.err = e.checkEnd(); e.err != io.EOF {
			return 0, e.err // too long: withhold the last bytes
		}
		return n, nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		e.err = fmt.Errorf("%w: %w after %d of %d bytes", ErrShortBody, io.ErrUnexpectedEOF, e.n, e.size)
		return n, e.err
	}
	if err != nil {
		e.err = err
	}
	return n, err
}

// checkEnd returns io.EOF when r is at its end and an error wrapping
// ErrShortBody when it holds more bytes.
func (e *exactReader) checkEnd() error {
	var one [1]byte
	for {
		m, err := e.r.Read(one[:])
		if m > 0 {
			return fmt.Errorf("%w: more than the %d bytes announced", ErrShortBody, e.size)
		}
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		if err != nil {
			return err
		}
	}
}

// readCloser joins a reader to the Close of the body it reads.
type readCloser struct {
	io.Reader
	io.Closer
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// guardReader lets an upload read r until detach, then never again. An
// HTTP transport may go on reading a request body after the request has
// failed; detaching makes sure the caller's reader is left alone once
// Put returns, and reports the reader's own error, if any.
type guardReader struct {
	mu       sync.Mutex
	r        io.Reader
	err      error // the first error other than io.EOF that r returned
	detached bool
}

func (g *guardReader) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.detached {
		return 0, errors.New("store: upload body read after Put returned")
	}
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF && g.err == nil {
		g.err = err
	}
	return n, err
}

// detach stops further reads and returns the reader's error.
func (g *guardReader) detach() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.detached = true
	return g.err
}
