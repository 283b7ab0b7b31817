package main

import (
	"io"
	"log/slog"
	"strings"
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
	h := slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				if t, ok := a.Value.Any().(time.Time); ok {
					return slog.String(slog.TimeKey, t.Format(time.RFC3339Nano))
				}
			case slog.LevelKey:
				if l, ok := a.Value.Any().(slog.Level); ok {
					s := strings.ToLower(l.String())
					if s == "warn" {
						s = "warning"
					}
					return slog.String(slog.LevelKey, s)
				}
			}
			return a
		},
	})
	slog.SetDefault(slog.New(h))
}
