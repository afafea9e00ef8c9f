/*
 * RTP side of the benchmark load generator (relay-gen.ts does SIP and drives this over stdin).
 * A Node generator cannot send and receive 100,000 packets/s next to the daemon on a 2-core box
 * (it needs more than a core of its own); this does it in a few percent of one.
 *
 * Streams share one UDP socket per local address (the daemon latches each call's RTP to the
 * address and port it comes from, so this is invisible to it); each active stream sends one
 * 160-byte G.711 frame every 20 ms, streams spread over ten 2 ms phases, sent with sendmmsg and
 * received with recvmmsg so the generator's syscalls do not grow with the number of calls. The payload carries a magic, the stream id, the send time
 * (CLOCK_MONOTONIC) and a sequence number, so whoever receives it (another stream of this engine,
 * through the daemon or an echoing agent) measures one-way latency, loss and RFC 3550 jitter.
 *
 * Commands (one per line on stdin):
 *   open ID IP            stream ID on the socket of IP (bound on IP:0 the first time), answer "port ID PORT"
 *   remote ID IP PORT     where the stream sends
 *   active ID 0|1         start/stop sending
 *   window SECONDS        reset counters, measure packets sent in the next SECONDS; one second
 *                         after the window answer "stats {json}"
 *   quit
 * Build: cc -O2 -o rtp-engine rtp-engine.c -lm
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXS 16384
#define PERIOD_NS 20000000LL
#define PHASES 10
#define HIST_RES_US 10
#define HIST_BINS 200000
#define MAGIC 0xbe0cc0deu
#define PKT 172
#define BATCH 64

#define MAXSOCK 8

typedef struct {
  int fd;
  uint8_t tx[PKT];
  int active;
  struct sockaddr_in remote;
  uint16_t seq;
  uint32_t ts, ssrc, nseq;
  uint32_t sent, recv;
  double last_transit;
  double jitter;
} stream_t;

static stream_t S[MAXS];
static struct { int fd; char ip[64]; int port; } SOCK[MAXSOCK];
static int nsock = 0;
/* Per socket, the frames of one phase, sent with one sendmmsg. */
static struct mmsghdr TXM[MAXSOCK][BATCH];
static struct iovec TXV[MAXSOCK][BATCH];
static int txn[MAXSOCK];
static int nmax = 0;
static int64_t t0;
static double w0 = INFINITY, w1 = -INFINITY;
static int64_t report_at = 0;
static uint32_t hist[HIST_BINS + 1];
static double lat_sum, lat_max, send_late_max;
static uint64_t lat_n, foreign;
static double cpu0, window_s;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static double now_ms(void) { return (now_ns() - t0) / 1e6; }
static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void put32(uint8_t *b, uint32_t v) { b[0] = v >> 24; b[1] = v >> 16; b[2] = v >> 8; b[3] = v; }
static uint32_t get32(const uint8_t *b) { return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3]; }

static void flush(int k) {
  int off = 0;
  while (off < txn[k]) {
    int r = sendmmsg(SOCK[k].fd, TXM[k] + off, txn[k] - off, MSG_DONTWAIT);
    if (r <= 0) break; /* a full send buffer drops the rest: counted as loss by the receiver */
    off += r;
  }
  txn[k] = 0;
}

static int sock_index(int fd) {
  for (int k = 0; k < nsock; k++)
    if (SOCK[k].fd == fd) return k;
  return 0;
}

static void send_frame(int id, double t) {
  stream_t *s = &S[id];
  uint8_t *b = s->tx;
  b[0] = 0x80;
  b[1] = 0;
  b[2] = s->seq >> 8;
  b[3] = s->seq & 0xff;
  put32(b + 4, s->ts);
  put32(b + 8, s->ssrc);
  put32(b + 12, MAGIC);
  put32(b + 16, (uint32_t)id);
  memcpy(b + 20, &t, 8);
  put32(b + 28, s->nseq);
  memset(b + 32, 0xff, PKT - 32);
  s->seq++;
  s->nseq++;
  s->ts += 160;
  if (t >= w0 && t < w1) s->sent++;
  int k = sock_index(s->fd);
  int j = txn[k]++;
  TXV[k][j].iov_base = b;
  TXV[k][j].iov_len = PKT;
  memset(&TXM[k][j], 0, sizeof TXM[k][j]);
  TXM[k][j].msg_hdr.msg_name = &s->remote;
  TXM[k][j].msg_hdr.msg_namelen = sizeof s->remote;
  TXM[k][j].msg_hdr.msg_iov = &TXV[k][j];
  TXM[k][j].msg_hdr.msg_iovlen = 1;
  if (txn[k] == BATCH) flush(k);
}

static void on_packet(const uint8_t *b, int len, double now) {
  if (len < 32 || get32(b + 12) != MAGIC) {
    foreign++;
    return;
  }
  uint32_t src = get32(b + 16);
  if (src >= (uint32_t)nmax) {
    foreign++;
    return;
  }
  double sent_at;
  memcpy(&sent_at, b + 20, 8);
  stream_t *s = &S[src];
  double transit = now - sent_at;
  if (!isnan(s->last_transit)) s->jitter += (fabs(transit - s->last_transit) - s->jitter) / 16;
  s->last_transit = transit;
  if (!(sent_at >= w0 && sent_at < w1)) return;
  s->recv++;
  long bin = (long)(transit * 1000 / HIST_RES_US);
  if (bin < 0) bin = 0;
  if (bin > HIST_BINS) bin = HIST_BINS;
  hist[bin]++;
  lat_sum += transit;
  lat_n++;
  if (transit > lat_max) lat_max = transit;
}

static double pct(double p) {
  uint64_t target = (uint64_t)ceil(p / 100 * lat_n), acc = 0;
  for (int i = 0; i <= HIST_BINS; i++) {
    acc += hist[i];
    if (acc >= target && target > 0) return (i + 0.5) * HIST_RES_US / 1000.0;
  }
  return 0;
}

static void report(void) {
  uint64_t sent = 0, recv = 0;
  int streams = 0;
  double jsum = 0, jmax = 0;
  for (int i = 0; i < nmax; i++) {
    if (!S[i].sent) continue;
    streams++;
    sent += S[i].sent;
    recv += S[i].recv;
    jsum += S[i].jitter;
    if (S[i].jitter > jmax) jmax = S[i].jitter;
  }
  uint64_t lost = sent > recv ? sent - recv : 0;
  printf("stats {\"windowS\":%g,\"streams\":%d,\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"lossPct\":%.4f,\"foreign\":%llu,"
         "\"latency\":{\"packets\":%llu,\"p50Ms\":%.3f,\"p90Ms\":%.3f,\"p99Ms\":%.3f,\"p999Ms\":%.3f,\"maxMs\":%.3f,\"meanMs\":%.3f},"
         "\"jitterMeanMs\":%.3f,\"jitterMaxMs\":%.3f,\"sendPpsPerStream\":%.1f,\"generatorCpuPct\":%.0f,\"sendLateMaxMs\":%.2f}\n",
         window_s, streams, (unsigned long long)sent, (unsigned long long)recv, (unsigned long long)lost, sent ? 100.0 * lost / sent : 0.0,
         (unsigned long long)foreign, (unsigned long long)lat_n, pct(50), pct(90), pct(99), pct(99.9), lat_max, lat_n ? lat_sum / lat_n : 0.0,
         streams ? jsum / streams : 0.0, jmax, streams ? sent / (double)streams / window_s : 0.0, (cpu_s() - cpu0) / (window_s + 1) * 100,
         send_late_max);
  fflush(stdout);
}

static void command(char *line, int ep) {
  char ip[64];
  int id, port, on;
  double secs;
  if (sscanf(line, "open %d %63s", &id, ip) == 2 && id >= 0 && id < MAXS) {
    int k = 0;
    while (k < nsock && strcmp(SOCK[k].ip, ip) != 0) k++;
    if (k == nsock) {
      if (nsock == MAXSOCK) {
        printf("error open %d too many local addresses\n", id);
        fflush(stdout);
        return;
      }
      int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      struct sockaddr_in a = {0};
      a.sin_family = AF_INET;
      inet_pton(AF_INET, ip, &a.sin_addr);
      int big = 4 << 20;
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
      if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        printf("error open %d %s\n", id, strerror(errno));
        fflush(stdout);
        return;
      }
      socklen_t al = sizeof a;
      getsockname(fd, (struct sockaddr *)&a, &al);
      SOCK[k].fd = fd;
      SOCK[k].port = ntohs(a.sin_port);
      snprintf(SOCK[k].ip, sizeof SOCK[k].ip, "%s", ip);
      struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k + 1};
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      nsock++;
    }
    int fd = SOCK[k].fd;
    stream_t *s = &S[id];
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->seq = rand();
    s->ts = rand();
    s->ssrc = rand();
    s->last_transit = NAN;
    if (id + 1 > nmax) nmax = id + 1;
    printf("port %d %d\n", id, SOCK[k].port);
    fflush(stdout);
  } else if (sscanf(line, "remote %d %63s %d", &id, ip, &port) == 3 && id >= 0 && id < nmax) {
    S[id].remote.sin_family = AF_INET;
    S[id].remote.sin_port = htons(port);
    inet_pton(AF_INET, ip, &S[id].remote.sin_addr);
  } else if (sscanf(line, "active %d %d", &id, &on) == 2 && id >= 0 && id < nmax) {
    S[id].active = on && S[id].remote.sin_port != 0;
  } else if (sscanf(line, "window %lf", &secs) == 1) {
    for (int i = 0; i < nmax; i++) {
      S[i].sent = S[i].recv = 0;
      S[i].jitter = 0;
      S[i].last_transit = NAN;
    }
    memset(hist, 0, sizeof hist);
    lat_sum = lat_max = send_late_max = 0;
    lat_n = foreign = 0;
    window_s = secs;
    cpu0 = cpu_s();
    w0 = now_ms();
    w1 = w0 + secs * 1000;
    report_at = now_ns() + (int64_t)((secs + 1) * 1e9);
  } else if (strncmp(line, "quit", 4) == 0) {
    exit(0);
  }
}

int main(void) {
  t0 = now_ns();
  srand((unsigned)t0);
  int ep = epoll_create1(0);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  struct epoll_event sev = {.events = EPOLLIN, .data.u32 = 0};
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);
  int64_t due[PHASES];
  for (int p = 0; p < PHASES; p++) due[p] = t0 + p * (PERIOD_NS / PHASES);
  static char inbuf[1 << 16];
  size_t inlen = 0;
  static uint8_t bufs[BATCH][2048];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = sizeof bufs[i];
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  struct epoll_event evs[256];
  for (;;) {
    int64_t n = now_ns();
    int64_t next = INT64_MAX;
    for (int p = 0; p < PHASES; p++) {
      while (due[p] <= n) {
        double late = (n - due[p]) / 1e6;
        double t = (n - t0) / 1e6;
        if (t >= w0 && t < w1 && late > send_late_max) send_late_max = late;
        for (int id = p; id < nmax; id += PHASES)
          if (S[id].active) send_frame(id, now_ms());
        for (int k = 0; k < nsock; k++) flush(k);
        due[p] += PERIOD_NS;
      }
      if (due[p] < next) next = due[p];
    }
    if (report_at && n >= report_at) {
      report_at = 0;
      report();
    }
    if (report_at && report_at < next) next = report_at;
    int64_t wait_ns = next - now_ns();
    int timeout = wait_ns <= 0 ? 0 : (int)((wait_ns + 999999) / 1000000);
    int k = epoll_wait(ep, evs, 256, timeout);
    for (int i = 0; i < k; i++) {
      uint32_t tag = evs[i].data.u32;
      if (tag == 0) {
        for (;;) {
          ssize_t r = read(0, inbuf + inlen, sizeof inbuf - inlen - 1);
          if (r == 0) exit(0);
          if (r < 0) break;
          inlen += r;
          inbuf[inlen] = 0;
          char *start = inbuf, *nl;
          while ((nl = strchr(start, '\n'))) {
            *nl = 0;
            command(start, ep);
            start = nl + 1;
          }
          inlen = strlen(start);
          memmove(inbuf, start, inlen);
        }
        continue;
      }
      int fd = SOCK[tag - 1].fd;
      for (;;) {
        int m = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (m <= 0) break;
        double now = now_ms();
        for (int j = 0; j < m; j++) on_packet(bufs[j], msgs[j].msg_len, now);
        if (m < BATCH) break;
      }
    }
  }
}
