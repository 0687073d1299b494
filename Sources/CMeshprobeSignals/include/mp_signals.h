#ifndef MP_SIGNALS_H
#define MP_SIGNALS_H

/// Unblocks SIGINT and SIGTERM in the calling thread (blocked since the process was loaded, see mp_signals.c).
void mp_signals_unblock(void);

/// 1 when a handler other than the noting one set at load (not the default action, not ignore) is installed for
/// `signo`.
int mp_signals_has_handler(int signo);

/// 1 when `signo` (SIGINT or SIGTERM) was noted by the handler set at load since the last call; clears the note.
int mp_signals_take_recorded(int signo);

#endif
