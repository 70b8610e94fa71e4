// What one send(2) over loopback TCP costs on this machine, by write size: the price of one
// broadcast write, the unit every fan-out figure of the README is made of.
//
// SOCKETS connected pairs on 127.0.0.1; a reader thread on CPU 1 drains every socket through epoll
// (as a load generator would); the main thread on CPU 0 writes SIZE bytes to each socket in turn,
// pass after pass, and reports its own CPU time (user + system) per send, for each size.
//
//   gcc -O2 -o /tmp/sendcost bench/sendcost.c -lpthread && /tmp/sendcost [SOCKETS (1000)] [PASSES (40)]
//
// Also prints the cost of an empty system call (getppid), the floor of any send.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int sockets = 1000;
static int *server_side, *client_side;
static volatile int stop;

static double cpu_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity");
}

static void *drain(void *arg) {
  (void) arg;
  pin(1);
  int ep = epoll_create1(0);
  for (int i = 0; i < sockets; i++) {
    struct epoll_event e = {.events = EPOLLIN, .data.fd = client_side[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, client_side[i], &e);
  }
  static char buf[1 << 16];
  struct epoll_event ready[256];
  while (!stop) {
    int n = epoll_wait(ep, ready, 256, 100);
    for (int i = 0; i < n; i++) {
      while (read(ready[i].data.fd, buf, sizeof buf) > 0) {
      }
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1) sockets = atoi(argv[1]);
  int passes = argc > 2 ? atoi(argv[2]) : 40;
  server_side = calloc(sockets, sizeof(int));
  client_side = calloc(sockets, sizeof(int));

  int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof addr;
  if (bind(listener, (void *) &addr, sizeof addr) || listen(listener, 4096) || getsockname(listener, (void *) &addr, &len)) {
    perror("listen");
    return 1;
  }
  for (int i = 0; i < sockets; i++) {
    client_side[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(client_side[i], (void *) &addr, sizeof addr) != 0) {
      perror("connect (raise ulimit -n?)");
      return 1;
    }
    server_side[i] = accept(listener, NULL, NULL);
    setsockopt(server_side[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as the chat server
    fcntl(client_side[i], F_SETFL, O_NONBLOCK);
  }
  pthread_t reader;
  pthread_create(&reader, NULL, drain, NULL);
  pin(0);
  usleep(100000);

  double t0 = cpu_seconds();
  for (int i = 0; i < 1000000; i++) syscall(SYS_getppid);
  printf("empty system call (getppid): %.2f us\n", (cpu_seconds() - t0));

  static char payload[8192];
  memset(payload, 'x', sizeof payload);
  int sizes[] = {100, 200, 400, 800, 1500, 3000, 6000};
  for (int round = 0; round < 2; round++) {  // the first round warms up
    for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      double start = cpu_seconds();
      for (int p = 0; p < passes; p++) {
        for (int i = 0; i < sockets; i++) {
          if (send(server_side[i], payload, sizes[s], MSG_DONTWAIT) < 0) perror("send");
        }
      }
      if (round == 1) {
        printf("send of %5d bytes to one of %d sockets: %.2f us of CPU\n", sizes[s], sockets,
               (cpu_seconds() - start) / ((double) passes * sockets) * 1e6);
      }
    }
  }
  stop = 1;
  pthread_join(reader, NULL);
  return 0;
}
