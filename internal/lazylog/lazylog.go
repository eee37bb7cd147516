// Package lazylog defers a logger's key/value pairs until a line is written. controller-runtime
// gives every reconcile a logger with the controller, object and reconcile id; zap encodes such
// pairs as soon as they are added (an encoder copy and a buffer each time), which was about a
// quarter of what a reconcile allocated, although most reconciles write no line at all.
package lazylog

import "github.com/go-logr/logr"

// Wrap returns a logger that writes through l and encodes the pairs added with WithValues only
// when it writes a line.
func Wrap(l logr.Logger) logr.Logger {
	base := l.GetSink()
	if base == nil {
		return l
	}
	// One more frame (this package's) between the caller and the sink.
	if cd, ok := base.(logr.CallDepthLogSink); ok {
		base = cd.WithCallDepth(1)
	}
	return logr.New(&sink{base: base})
}

type sink struct {
	base logr.LogSink
	// pending are the pairs added since base was last built.
	pending []any
}

// Init does nothing: the wrapped sink was initialised by its own logger.
func (s *sink) Init(logr.RuntimeInfo) {}

func (s *sink) Enabled(level int) bool { return s.base.Enabled(level) }

func (s *sink) Info(level int, msg string, kv ...any) { s.built().Info(level, msg, kv...) }

func (s *sink) Error(err error, msg string, kv ...any) { s.built().Error(err, msg, kv...) }

// WithValues keeps the pairs (a new slice: loggers derived from one must not share an array).
func (s *sink) WithValues(kv ...any) logr.LogSink {
	pending := make([]any, 0, len(s.pending)+len(kv))
	return &sink{base: s.base, pending: append(append(pending, s.pending...), kv...)}
}

// WithName names the logger; names are added once per controller, not per reconcile.
func (s *sink) WithName(name string) logr.LogSink {
	return &sink{base: s.built().WithName(name)}
}

func (s *sink) WithCallDepth(depth int) logr.LogSink {
	cd, ok := s.base.(logr.CallDepthLogSink)
	if !ok {
		return s
	}
	return &sink{base: cd.WithCallDepth(depth), pending: s.pending}
}

func (s *sink) built() logr.LogSink {
	if len(s.pending) == 0 {
		return s.base
	}
	return s.base.WithValues(s.pending...)
}
