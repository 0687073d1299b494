#include "mp_signals.h"

#include <pthread.h>
#include <signal.h>
#include <stddef.h>

// SIGINT and SIGTERM are blocked from the moment the binary is loaded, before any shared library's initialiser (the
// executable's .preinit_array runs first), the Swift runtime or main: one that arrives while the process starts
// stays pending instead of killing it by the default action, and is delivered once main has installed its handling
// (SignalHub) and unblocked them.
static void mp_signals_block_at_load(int argc, char **argv, char **envp) {
    (void)argc;
    (void)argv;
    (void)envp;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
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
    return current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN;
}
