package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// setupLogging makes slog's default logger write logrus-style text lines
// (`time="..." level=debug msg="..."`) to w: debug level with --debug,
// otherwise errors only, so that normal runs print nothing but output.
func setupLogging(w io.Writer, debug bool) {
	level := slog.LevelError
	if debug {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(&logrusHandler{w: w, level: level, mu: &sync.Mutex{}}))
}

// logrusHandler formats records like logrus' text formatter.
type logrusHandler struct {
	w     io.Writer
	level slog.Level
	mu    *sync.Mutex // shared by handlers derived with WithAttrs
	attrs []slog.Attr // keys already qualified by the group open when added
	group string      // "a.b" for WithGroup("a").WithGroup("b")
}

// qualify prefixes key with the open group, if any.
func (h *logrusHandler) qualify(key string) string {
	if h.group == "" {
		return key
	}
	return h.group + "." + key
}

func (h *logrusHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *logrusHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	fmt.Fprintf(&b, "time=%s level=%s msg=%s", logQuote(t.Format(time.RFC3339)), levelName(r.Level), logQuote(r.Message))
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%s", a.Key, logQuote(a.Value.String()))
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", h.qualify(a.Key), logQuote(a.Value.String()))
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *logrusHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.attrs = slices.Clone(h.attrs)
	for _, a := range attrs {
		n.attrs = append(n.attrs, slog.Attr{Key: h.qualify(a.Key), Value: a.Value})
	}
	return &n
}

func (h *logrusHandler) WithGroup(name string) slog.Handler {
	n := *h
	n.group = h.qualify(name)
	return &n
}

func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warning"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}

// logQuote quotes s unless it consists only of characters logrus leaves bare.
func logQuote(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._/@^+", r)) {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}
