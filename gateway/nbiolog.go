package gateway

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/lesismal/nbio/logging"
)

// nbio logs through a package-level logger. The first Server routes it to
// its slog logger at debug level (nbio's info lines are start/stop chatter;
// its warnings and errors stay visible).
var nbioLogOnce sync.Once

func routeNBIOLogs(log *slog.Logger) {
	nbioLogOnce.Do(func() { logging.SetLogger(nbioLogger{log.With(slog.String("lib", "nbio"))}) })
}

type nbioLogger struct{ log *slog.Logger }

func (l nbioLogger) SetLevel(int)                  {}
func (l nbioLogger) Debug(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l nbioLogger) Info(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l nbioLogger) Warn(format string, v ...any)  { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l nbioLogger) Error(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
