#include "mp_signals.h"

#include <pthread.h>
#include <signal.h>
#include <stddef.h>

static volatile sig_atomic_t mp_signals_noted[2];

static void mp_signals_note(int signo) {
    if (signo == SIGINT) mp_signals_noted[0] = 1;
    if (signo == SIGTERM) mp_signals_noted[1] = 1;
}

static void mp_signals_record(void) {
    struct sigaction action = {0};
    action.sa_handler = mp_signals_note;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

int mp_signals_take_recorded(int signo) {
    int index = signo == SIGINT ? 0 : signo == SIGTERM ? 1 : -1;
    if (index < 0) return 0;
    return __atomic_exchange_n(&mp_signals_noted[index], 0, __ATOMIC_SEQ_CST) != 0;
}

// From the moment the binary is loaded, before any shared library's initialiser (the executable's .preinit_array runs
// first), the Swift runtime or main, SIGINT and SIGTERM are blocked and their handler only notes them: one that
// arrives while the process starts is never given the default action, whether it stays pending (blocked) or meets a
// thread that has them unblocked (an async main's main thread waits in Dispatch's sigsuspend with every signal
// unblocked). main delivers a noted one once its own handling (SignalHub) is in place.
static void mp_signals_block_at_load(int argc, char **argv, char **envp) {
    (void)argc;
    (void)argv;
    (void)envp;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    mp_signals_record();
}

__attribute__((section(".preinit_array"), used)) static void (*const mp_signals_preinit)(int, char **, char **) =
    mp_signals_block_at_load;

void mp_signals_unblock(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int mp_signals_has_handler(int signo) {
    struct sigaction current;
    if (sigaction(signo, NULL, &current) != 0) return 0;
    return current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN && current.sa_handler != mp_signals_note;
}
