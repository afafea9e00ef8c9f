import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Every Prometheus metric of the daemon, on one registry served at /metrics. */
export class Metrics {
  readonly registry = new Registry();
  readonly sipRequests = new Counter({ name: 'ccedge_sip_requests_total', help: 'SIP requests received, by method', labelNames: ['method'] as const, registers: [this.registry] });
  readonly sipRejections = new Counter({
    name: 'ccedge_sip_rejections_total',
    help: 'SIP requests answered with an error status, by status and reason code',
    labelNames: ['status', 'code'] as const,
    registers: [this.registry],
  });
  readonly sipDropped = new Counter({
    name: 'ccedge_sip_dropped_total',
    help: 'SIP datagrams and TCP connections dropped before parsing, by transport and reason (forbidden source, too large, malformed, connection limits, timeouts)',
    labelNames: ['transport', 'reason'] as const,
    registers: [this.registry],
  });
  readonly sipTcpConnections = new Gauge({ name: 'ccedge_sip_tcp_connections', help: 'Open SIP TCP connections', registers: [this.registry] });
  readonly callsActive = new Gauge({ name: 'ccedge_calls_active', help: 'Calls currently up or ringing', registers: [this.registry] });
  readonly callsTotal = new Counter({ name: 'ccedge_calls_total', help: 'Calls ended, by outcome', labelNames: ['outcome'] as const, registers: [this.registry] });
  readonly rtpPortsInUse = new Gauge({ name: 'ccedge_rtp_ports_in_use', help: 'RTP ports allocated to SIP legs', registers: [this.registry] });
  readonly rtpPackets = new Counter({ name: 'ccedge_rtp_packets_total', help: 'RTP packets of ended calls, by direction', labelNames: ['direction'] as const, registers: [this.registry] });
  readonly dtmfDigits = new Counter({ name: 'ccedge_dtmf_digits_total', help: 'DTMF digits detected (RFC 4733)', registers: [this.registry] });
  readonly ivrSpeechTurns = new Counter({
    name: 'ccedge_ivr_speech_turns_total',
    help: 'Listening turns of speech IVR menus, by result (recognised, rejected, no-input, unavailable)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  // hostile input: http
  readonly agentLoginsRefused = new Counter({
    name: 'ccedge_agent_logins_refused_total',
    help: 'Agent logins refused, by reason (wrong_password, throttled_address, throttled_agent, busy, bad_request)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly passwordChecks = new Counter({ name: 'ccedge_password_checks_total', help: 'Agent password checks (scrypt) started for logins', registers: [this.registry] });
  readonly httpAuthRefused = new Counter({
    name: 'ccedge_http_auth_refused_total',
    help: 'Admin API bearer tokens refused, by reason (invalid, throttled)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly httpBodyTooLarge = new Counter({ name: 'ccedge_http_body_too_large_total', help: 'Requests answered 413 (body over http.maxBodyBytes)', registers: [this.registry] });
  readonly wsRefused = new Counter({
    name: 'ccedge_ws_refused_total',
    help: 'Agent WebSocket connections refused or closed before hello, by reason (address_limit, total_limit, frames_before_hello, hello_timeout)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly wsFramesBeforeHello = new Counter({ name: 'ccedge_ws_frames_before_hello_total', help: 'Agent WebSocket frames received before hello', registers: [this.registry] });
  // hostile input: digest and media
  readonly digestFailures = new Counter({
    name: 'ccedge_sip_digest_failures_total',
    help: 'INVITE digest responses refused, by trunk and reason (bad: wrong credentials, replay: nonce count reused)',
    labelNames: ['trunk', 'reason'] as const,
    registers: [this.registry],
  });
  readonly digestBlocks = new Counter({ name: 'ccedge_sip_digest_blocks_total', help: 'Source addresses blocked after too many wrong digest responses, by trunk', labelNames: ['trunk'] as const, registers: [this.registry] });
  readonly digestBlocked = new Counter({ name: 'ccedge_sip_digest_blocked_total', help: 'INVITEs answered 403 because their source is blocked, by trunk', labelNames: ['trunk'] as const, registers: [this.registry] });
  readonly rtpForeignPackets = new Counter({ name: 'ccedge_rtp_foreign_packets_total', help: 'RTP packets dropped on SIP legs because they came from a source other than the negotiated (or latched) one', registers: [this.registry] });
  readonly rtpForeignCalls = new Counter({ name: 'ccedge_rtp_foreign_source_calls_total', help: 'Calls that received RTP from an unexpected source', registers: [this.registry] });
  readonly rtpLatched = new Counter({ name: 'ccedge_rtp_latched_total', help: 'Calls whose media latched to a source other than the SDP one (trunks[].symmetricRtp)', registers: [this.registry] });

  /** Set once media workers run: read on every scrape. */
  mediaWorkerStatus: (() => ReadonlyArray<{ index: number; alive: boolean; sessions: number }>) | undefined;
  readonly mediaWorkersAlive = new Gauge({
    name: 'ccedge_media_workers_alive',
    help: 'Media worker threads running (media.workers)',
    registers: [this.registry],
    collect: () => {
      const status = this.mediaWorkerStatus?.();
      if (status) this.mediaWorkersAlive.set(status.filter((w) => w.alive).length);
    },
  });
  readonly mediaWorkerSessions = new Gauge({
    name: 'ccedge_media_worker_sessions',
    help: 'RTP sessions open on each media worker thread (two per forwarded call)',
    labelNames: ['worker'] as const,
    registers: [this.registry],
    collect: () => {
      for (const w of this.mediaWorkerStatus?.() ?? []) this.mediaWorkerSessions.set({ worker: String(w.index) }, w.sessions);
    },
  });
  readonly mediaWorkerDeaths = new Counter({
    name: 'ccedge_media_worker_deaths_total',
    help: 'Media worker threads that died (a crash or an API restart; their calls ended), by worker',
    labelNames: ['worker'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'ccedge_' });
  }
}
