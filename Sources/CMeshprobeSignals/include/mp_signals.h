#ifndef MP_SIGNALS_H
#define MP_SIGNALS_H

/// Unblocks SIGINT and SIGTERM in the calling thread (blocked since the process was loaded, see mp_signals.c).
void mp_signals_unblock(void);

/// 1 when a handler (not the default action, not ignore) is installed for `signo`.
int mp_signals_has_handler(int signo);

#endif
