package main

import (
	"encoding/json"
	"fmt"
	"io"
)

// printer is the one place commands write their output through: text to
// stdout or stderr, and JSON (one compact line, HTML-escaped like Go's
// encoder) to stdout.
type printer struct {
	in          io.Reader
	out, errOut io.Writer
}

// JSON writes v as one line of JSON.
func (p *printer) JSON(v any) error {
	return json.NewEncoder(p.out).Encode(v)
}

// Printf writes to stdout.
func (p *printer) Printf(format string, a ...any) { fmt.Fprintf(p.out, format, a...) }

// Errorf writes to stderr.
func (p *printer) Errorf(format string, a ...any) { fmt.Fprintf(p.errOut, format, a...) }

// Output writes either v as JSON (asJSON) or the text from text().
func (p *printer) Output(asJSON bool, v any, text func()) error {
	if asJSON {
		return p.JSON(v)
	}
	text()
	return nil
}

// ErrorJSON writes err's message ("" for nil) as JSON, for commands whose
// JSON output is only their outcome; a failure becomes exit status 1.
func (p *printer) ErrorJSON(err error) error {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if jerr := p.JSON(msg); jerr != nil {
		return jerr
	}
	return failedStatus(err != nil)
}
