import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import sip, { type Flow, type SipMessage, type SipRequest, type SipResponse, type Stack } from 'sip';
import { newTag, respond } from '../../sip/messages';
import { UasDialog, type DialogEndReason } from '../../sip/uas-dialog';

/*
 * UasDialog on a real sip.js stack bound on 127.0.0.1, talked to by a plain UDP socket playing the
 * PBX. The little router below does what SipServer.onRequest does for dialogs (ACK / CANCEL /
 * in-dialog / new INVITE), without trunks, auth or metrics.
 */

const HOST = '127.0.0.1';
const OFFER = 'v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n';
const ANSWER = 'v=0\r\no=ccedge 7 7 IN IP4 127.0.0.1\r\ns=ccedge\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';
const ANSWER2 = ANSWER.replace('o=ccedge 7 7', 'o=ccedge 7 8').replace('a=rtpmap:0 PCMU/8000', 'a=rtpmap:0 PCMU/8000\r\na=sendonly');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, HOST, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

interface Received {
  raw: string;
  msg: SipMessage;
}

function isResponse(m: SipMessage): m is SipResponse {
  return (m as SipResponse).status !== undefined;
}

/** The "PBX": a bare UDP socket that sends hand-written SIP and records what comes back. */
class Peer {
  readonly received: Received[] = [];
  private listeners: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.on('message', (buf) => {
      const raw = buf.toString('binary');
      const msg = sip.parse(raw);
      if (!msg) return;
      this.received.push({ raw, msg });
      for (const l of [...this.listeners]) l();
    });
  }

  static open(): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind(0, HOST, () => resolve(new Peer(s)));
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(text: string, port: number): void {
    this.socket.send(Buffer.from(text, 'binary'), port, HOST);
  }

  responses(pred: (rs: SipResponse) => boolean = () => true): SipResponse[] {
    return this.received.map((r) => r.msg).filter((m): m is SipResponse => isResponse(m) && pred(m));
  }

  requests(pred: (rq: SipRequest) => boolean = () => true): Received[] {
    return this.received.filter((r) => !isResponse(r.msg) && pred(r.msg as SipRequest));
  }

  /** The first recorded message (already received or arriving within timeoutMs) matching pred. */
  waitFor(pred: (r: Received) => boolean, what: string, timeoutMs = 3000): Promise<Received> {
    const found = this.received.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = this.received.find(pred);
        if (!hit) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== check);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== check);
        reject(new Error(`peer did not receive ${what} within ${timeoutMs} ms; got:\n${this.received.map((r) => r.raw.split('\r\n')[0]).join('\n')}`));
      }, timeoutMs);
      this.listeners.push(check);
    });
  }

  waitForResponse(status: number, cseqMethod: string, cseq: number, timeoutMs = 3000): Promise<SipResponse> {
    return this.waitFor(
      (r) => isResponse(r.msg) && r.msg.status === status && r.msg.headers.cseq.method === cseqMethod && r.msg.headers.cseq.seq === cseq,
      `${status} to ${cseqMethod} ${cseq}`,
      timeoutMs,
    ).then((r) => r.msg as SipResponse);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** sip.js stack + the dialog routing SipServer does. */
class Uas {
  readonly dialogs: UasDialog[] = [];
  private readonly byTag = new Map<string, UasDialog>();
  private readonly pendingInvites = new Map<string, UasDialog>();
  private dialogWaiters: Array<(d: UasDialog) => void> = [];
  /** SipServer forgets a dialog when it terminates; a test may keep routing to it. */
  forgetTerminated = true;

  private constructor(
    readonly stack: Stack,
    readonly port: number,
  ) {}

  get contact(): string {
    return `sip:ccedge@${HOST}:${this.port}`;
  }

  static async start(): Promise<Uas> {
    const port = await freeUdpPort();
    let uas: Uas | undefined;
    const stack = sip.create({ address: HOST, port, udp: true, tcp: false, logger: { error: (e) => console.error('sip stack error', e) } }, (rq, flow) =>
      uas?.onRequest(rq, flow),
    );
    uas = new Uas(stack, port);
    return uas;
  }

  nextDialog(): Promise<UasDialog> {
    return new Promise((resolve) => this.dialogWaiters.push(resolve));
  }

  private onRequest(rq: SipRequest, flow: Flow): void {
    const key = (callId: string, tag: unknown): string => `${callId}\n${String(tag)}`;
    if (rq.method === 'ACK') {
      this.byTag.get(key(rq.headers['call-id'], rq.headers.to.params.tag))?.onRequest(rq);
      return;
    }
    if (rq.method === 'CANCEL') {
      const d = this.pendingInvites.get(key(rq.headers['call-id'], rq.headers.via[0]?.params.branch));
      if (d) d.onCancel(rq);
      else this.stack.send(respond(rq, 481, 'Call/Transaction Does Not Exist', { toTag: newTag() }));
      return;
    }
    if (rq.headers.to.params.tag) {
      const d = this.byTag.get(key(rq.headers['call-id'], rq.headers.to.params.tag));
      if (d) d.onRequest(rq);
      else this.stack.send(respond(rq, 481, 'Call/Transaction Does Not Exist', { toTag: newTag() }));
      return;
    }
    if (rq.method === 'OPTIONS') {
      this.stack.send(respond(rq, 200, 'OK', { toTag: newTag() }));
      return;
    }
    if (rq.method !== 'INVITE') {
      this.stack.send(respond(rq, 481, 'Call/Transaction Does Not Exist', { toTag: newTag() }));
      return;
    }
    const dialog = new UasDialog(this.stack, rq, flow, this.contact, 'ccedge-unit');
    const dKey = key(dialog.callId, dialog.localTag);
    const pKey = key(rq.headers['call-id'], rq.headers.via[0]?.params.branch);
    this.byTag.set(dKey, dialog);
    this.pendingInvites.set(pKey, dialog);
    this.dialogs.push(dialog);
    dialog.on('confirmed', () => this.pendingInvites.delete(pKey));
    dialog.on('terminated', () => {
      this.pendingInvites.delete(pKey);
      if (this.forgetTerminated) this.byTag.delete(dKey);
    });
    const waiter = this.dialogWaiters.shift();
    waiter?.(dialog);
  }

  stop(): void {
    for (const d of this.dialogs) d.terminate('shutdown');
    this.stack.destroy();
  }
}

/** One call from the PBX's point of view: its tags, CSeq and the text of its requests. */
class Call {
  readonly callId = `${randomBytes(8).toString('hex')}@pbx.test`;
  readonly fromTag = randomBytes(4).toString('hex');
  toTag: string | undefined;
  cseq = 100 + Math.floor(Math.random() * 100);
  inviteBranch = branch();

  constructor(
    private readonly peer: Peer,
    private readonly uas: Uas,
    readonly contactPort: number = peer.port,
  ) {}

  request(
    method: string,
    opts: { cseq?: number; cseqMethod?: string; branch?: string; body?: string; toTag?: string | null; extra?: string[] } = {},
  ): string {
    const body = opts.body ?? '';
    const toTag = opts.toTag === null ? undefined : (opts.toTag ?? this.toTag);
    const lines = [
      `${method} sip:support@${HOST}:${this.uas.port} SIP/2.0`,
      `Via: SIP/2.0/UDP ${HOST}:${this.peer.port};branch=${opts.branch ?? branch()};rport`,
      'Max-Forwards: 70',
      `From: "PBX 1001" <sip:1001@${HOST}>;tag=${this.fromTag}`,
      `To: <sip:support@${HOST}:${this.uas.port}>${toTag ? `;tag=${toTag}` : ''}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${opts.cseq ?? this.cseq} ${opts.cseqMethod ?? method}`,
      `Contact: <sip:1001@${HOST}:${this.contactPort}>`,
      ...(opts.extra ?? []),
    ];
    if (body) lines.push('Content-Type: application/sdp');
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    return `${lines.join('\r\n')}\r\n\r\n${body}`;
  }

  /** Sends the initial INVITE and returns the UasDialog the stack created for it. */
  async invite(extra: string[] = []): Promise<UasDialog> {
    const next = this.uas.nextDialog();
    this.peer.send(this.request('INVITE', { branch: this.inviteBranch, body: OFFER, toTag: null, extra }), this.uas.port);
    return withTimeout(next, 3000, 'UasDialog for the INVITE');
  }

  /** ACK for a 2xx: a new transaction (new branch), same CSeq number as the INVITE it acknowledges. */
  ack(cseq = this.cseq): void {
    this.peer.send(this.request('ACK', { cseq }), this.uas.port);
  }

  send(text: string): void {
    this.peer.send(text, this.uas.port);
  }
}

function branch(): string {
  return `z9hG4bK${randomBytes(6).toString('hex')}`;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

function eventOnce<T extends unknown[]>(dialog: UasDialog, name: 'confirmed' | 'cancelled' | 'bye' | 'terminated' | 'reinvite', ms = 3000): Promise<T> {
  return withTimeout(
    new Promise<T>((resolve) => dialog.once(name, (...args: unknown[]) => resolve(args as T))),
    ms,
    `dialog '${name}'`,
  );
}

/** Lines of a received request copied into a hand-written response, as a PBX would. */
function responseTo(raw: string, status: number, reason: string, toTag?: string): string {
  const head = raw.split('\r\n\r\n')[0].split('\r\n').slice(1);
  const keep = head.filter((l) => /^(via|v|from|f|to|t|call-id|i|cseq)\s*:/i.test(l));
  const withTag = keep.map((l) => (toTag && /^(to|t)\s*:/i.test(l) && !/;tag=/i.test(l) ? `${l};tag=${toTag}` : l));
  return `SIP/2.0 ${status} ${reason}\r\n${withTag.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`;
}

describe('UasDialog over a real sip.js UDP stack', function () {
  this.timeout(20_000);
  let uas: Uas;
  let peer: Peer;

  beforeEach(async () => {
    uas = await Uas.start();
    peer = await Peer.open();
    // sip.js binds asynchronously without telling us: wait until it answers an OPTIONS.
    const probe = new Call(peer, uas);
    for (let i = 0; i < 50; i++) {
      probe.send(probe.request('OPTIONS', { cseq: i + 1, toTag: null }));
      const got = await peer.waitFor((r) => isResponse(r.msg) && r.msg.headers['call-id'] === probe.callId, 'OPTIONS 200', 100).catch(() => undefined);
      if (got) break;
    }
    assert.ok(peer.responses((rs) => rs.headers.cseq.method === 'OPTIONS').length > 0, 'stack never answered OPTIONS');
    peer.received.length = 0;
  });

  afterEach(async () => {
    uas.stop();
    await peer.close();
  });

  it('answers the INVITE with a 200 that carries a To-tag, our Contact and the SDP', async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    dialog.accept(ANSWER);
    const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
    assert.equal(ok.headers.to.params.tag, dialog.localTag);
    assert.ok(dialog.localTag.length > 0);
    call.toTag = dialog.localTag;
    assert.equal(ok.headers.from.params.tag, call.fromTag);
    assert.equal(ok.headers['call-id'], call.callId);
    assert.equal(ok.headers.via[0]?.params.branch, call.inviteBranch);
    assert.ok(Array.isArray(ok.headers.contact) && ok.headers.contact.length === 1, 'one Contact header');
    assert.equal((ok.headers.contact as Array<{ uri: string }>)[0].uri, uas.contact);
    assert.equal(ok.headers['content-type'], 'application/sdp');
    assert.equal(ok.content, ANSWER);
    assert.equal(dialog.state, 'accepting');
    call.ack();
    await eventOnce(dialog, 'confirmed');
  });

  it('sends 100 Trying without a To-tag and 180 Ringing with the dialog To-tag', async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    dialog.provisional(100, 'Trying');
    dialog.provisional(180, 'Ringing');
    const trying = await peer.waitForResponse(100, 'INVITE', call.cseq);
    const ringing = await peer.waitForResponse(180, 'INVITE', call.cseq);
    assert.equal(trying.headers.to.params.tag, undefined);
    assert.equal(ringing.headers.to.params.tag, dialog.localTag);
    dialog.reject(486, 'Busy Here');
  });

  it('retransmits the 2xx over UDP until the ACK arrives, then stops, and emits confirmed', async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    const started = Date.now();
    dialog.accept(ANSWER);
    const is2xx = (rs: SipResponse): boolean => rs.status === 200 && rs.headers.cseq.method === 'INVITE';
    // T1 = 500 ms: copies at ~0, 0.5 and 1.5 s. At least two within 1.6 s (wide, the machine is noisy).
    await peer.waitFor((r) => isResponse(r.msg) && is2xx(r.msg) && peer.responses(is2xx).length >= 2, 'a second copy of the 2xx', 4000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 4000, `second copy after ${elapsed} ms`);
    for (const copy of peer.responses(is2xx)) {
      assert.equal(copy.headers.to.params.tag, dialog.localTag, 'every copy carries the same To-tag');
      assert.equal(copy.content, ANSWER);
    }
    assert.equal(dialog.state, 'accepting');

    const confirmed = eventOnce(dialog, 'confirmed');
    call.toTag = String(peer.responses(is2xx)[0].headers.to.params.tag);
    call.ack();
    await confirmed;
    assert.equal(dialog.state, 'confirmed');
    const copiesAtAck = peer.responses(is2xx).length;
    // The next copy would be due at most T2 = 4 s later; 2.5 s covers the 2 s step that follows 1.5 s.
    await sleep(2500);
    assert.equal(peer.responses(is2xx).length, copiesAtAck, 'no 2xx copies after the ACK');
  });

  it('ignores an ACK whose CSeq does not match the 2xx (keeps retransmitting, not confirmed)', async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    let confirmed = false;
    dialog.on('confirmed', () => (confirmed = true));
    dialog.accept(ANSWER);
    const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
    call.toTag = String(ok.headers.to.params.tag);
    call.ack(call.cseq + 7);
    const is2xx = (rs: SipResponse): boolean => rs.status === 200 && rs.headers.cseq.method === 'INVITE';
    const before = peer.responses(is2xx).length;
    await peer.waitFor(() => peer.responses(is2xx).length > before, 'a 2xx copy after the wrong ACK', 4000);
    assert.equal(confirmed, false);
    assert.equal(dialog.state, 'accepting');
    call.ack();
    await eventOnce(dialog, 'confirmed');
  });

  it("answers the peer's BYE with 200 and emits bye then terminated(remote-bye)", async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    dialog.accept(ANSWER);
    const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
    call.toTag = String(ok.headers.to.params.tag);
    call.ack();
    await eventOnce(dialog, 'confirmed');

    const order: string[] = [];
    dialog.on('bye', () => order.push('bye'));
    const terminated = eventOnce<[DialogEndReason]>(dialog, 'terminated');
    call.cseq++;
    call.send(call.request('BYE'));
    const [reason] = await terminated;
    order.push('terminated');
    const byeOk = await peer.waitForResponse(200, 'BYE', call.cseq);
    assert.equal(reason, 'remote-bye');
    assert.deepEqual(order, ['bye', 'terminated']);
    assert.equal(dialog.state, 'terminated');
    assert.equal(byeOk.headers.to.params.tag, dialog.localTag);
  });

  it('answers CANCEL before the answer with 200, then 487 to the INVITE, and emits cancelled', async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    dialog.provisional(180, 'Ringing');
    const cancelled = eventOnce(dialog, 'cancelled');
    const terminated = eventOnce<[DialogEndReason]>(dialog, 'terminated');
    // CANCEL: same branch, Call-ID, From, To (no tag) and CSeq number as the INVITE.
    call.send(call.request('CANCEL', { branch: call.inviteBranch, toTag: null }));
    await cancelled;
    const [reason] = await terminated;
    assert.equal(reason, 'cancelled');
    await peer.waitForResponse(200, 'CANCEL', call.cseq);
    const terminatedRs = await peer.waitForResponse(487, 'INVITE', call.cseq);
    assert.equal(terminatedRs.headers.to.params.tag, dialog.localTag);
    assert.equal(dialog.state, 'terminated');
    // Hop-by-hop ACK for the 487 (same branch) so sip.js's transaction stops retransmitting it.
    call.send(call.request('ACK', { branch: call.inviteBranch, toTag: dialog.localTag }));
    // A late accept() must not resurrect the call.
    dialog.accept(ANSWER);
    await sleep(300);
    assert.equal(peer.responses((rs) => rs.status === 200 && rs.headers.cseq.method === 'INVITE').length, 0);
  });

  it('answers CANCEL after the answer with 200 only: no 487, the call stays up', async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    let cancelledEvent = false;
    dialog.on('cancelled', () => (cancelledEvent = true));
    dialog.accept(ANSWER);
    const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
    call.toTag = String(ok.headers.to.params.tag);
    call.send(call.request('CANCEL', { branch: call.inviteBranch, toTag: null }));
    await peer.waitForResponse(200, 'CANCEL', call.cseq);
    await sleep(400);
    assert.equal(peer.responses((rs) => rs.status === 487).length, 0, 'no 487 after the 2xx');
    assert.equal(cancelledEvent, false);
    assert.equal(dialog.state, 'accepting');
    call.ack();
    await eventOnce(dialog, 'confirmed');
    assert.equal(dialog.state, 'confirmed');
  });

  it('emits reinvite and answerReinvite({sdp}) sends a 200 retransmitted until its ACK', async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    dialog.accept(ANSWER);
    const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
    call.toTag = String(ok.headers.to.params.tag);
    call.ack();
    await eventOnce(dialog, 'confirmed');
    const initialCseq = call.cseq;

    const reinvite = eventOnce<[SipRequest]>(dialog, 'reinvite');
    call.cseq++;
    const holdOffer = OFFER.replace('a=rtpmap:0 PCMU/8000', 'a=rtpmap:0 PCMU/8000\r\na=sendonly');
    call.send(call.request('INVITE', { body: holdOffer }));
    const [rq] = await reinvite;
    assert.equal(rq.headers.cseq.seq, call.cseq);
    assert.equal(rq.content, holdOffer);

    dialog.answerReinvite(rq, { sdp: ANSWER2 });
    const isRe2xx = (rs: SipResponse): boolean => rs.status === 200 && rs.headers.cseq.method === 'INVITE' && rs.headers.cseq.seq === call.cseq;
    await peer.waitFor(() => peer.responses(isRe2xx).length >= 2, 'a second copy of the re-INVITE 2xx', 4000);
    const reOk = peer.responses(isRe2xx)[0];
    assert.equal(reOk.content, ANSWER2);
    assert.equal(reOk.headers.to.params.tag, dialog.localTag);
    assert.equal(peer.responses((rs) => rs.status === 200 && rs.headers.cseq.seq === initialCseq && rs.headers.cseq.method === 'INVITE').length > 0, true);

    call.ack(call.cseq);
    await sleep(300); // let the ACK land
    const copiesAtAck = peer.responses(isRe2xx).length;
    await sleep(2500);
    assert.equal(peer.responses(isRe2xx).length, copiesAtAck, 'no re-INVITE 2xx copies after its ACK');
    assert.equal(dialog.state, 'confirmed');
  });

  it('answers a re-INVITE with 500 while the initial 2xx is still unacknowledged', async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    let reinvites = 0;
    dialog.on('reinvite', () => reinvites++);
    dialog.accept(ANSWER);
    const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
    call.toTag = String(ok.headers.to.params.tag);
    const first = call.cseq;
    call.cseq++;
    call.send(call.request('INVITE', { body: OFFER }));
    await peer.waitForResponse(500, 'INVITE', call.cseq);
    assert.equal(reinvites, 0);
    call.ack(first);
    await eventOnce(dialog, 'confirmed');
  });

  it('answers an in-dialog request with a CSeq not above the last one with 500, and keeps the call', async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    dialog.accept(ANSWER);
    const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
    call.toTag = String(ok.headers.to.params.tag);
    call.ack();
    await eventOnce(dialog, 'confirmed');

    let byeEvent = false;
    dialog.on('bye', () => (byeEvent = true));
    const stale = call.cseq - 1;
    call.send(call.request('BYE', { cseq: stale }));
    const rs = await peer.waitForResponse(500, 'BYE', stale);
    assert.ok(rs.headers['retry-after'] !== undefined, '500 carries Retry-After');
    assert.equal(byeEvent, false);
    assert.equal(dialog.state, 'confirmed');

    // The same CSeq as the INVITE is not "higher" either.
    call.send(call.request('INFO', { cseq: call.cseq, body: '' }));
    await peer.waitForResponse(500, 'INFO', call.cseq);

    // A proper one still works.
    call.cseq++;
    call.send(call.request('BYE'));
    await peer.waitForResponse(200, 'BYE', call.cseq);
    assert.equal(dialog.state, 'terminated');
  });

  it('answers an in-dialog request that reaches a terminated dialog with 481', async () => {
    uas.forgetTerminated = false; // keep routing to the dead dialog, so its own answer is observed
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    dialog.accept(ANSWER);
    const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
    call.toTag = String(ok.headers.to.params.tag);
    call.ack();
    await eventOnce(dialog, 'confirmed');
    dialog.terminate('shutdown');
    assert.equal(dialog.state, 'terminated');
    call.cseq++;
    call.send(call.request('INFO', { extra: ['Content-Type: application/dtmf-relay'] }));
    await peer.waitForResponse(481, 'INFO', call.cseq);
    assert.equal(peer.responses((rs) => rs.status === 200 && rs.headers.cseq.method === 'INFO').length, 0);
  });

  it('bye() sends BYE to the source of the INVITE with swapped tags and resolves with the peer status', async () => {
    // Contact points at a different socket: the BYE must follow the flow, not the Contact.
    const contactSock = await Peer.open();
    try {
      const call = new Call(peer, uas, contactSock.port);
      const dialog = await call.invite();
      dialog.accept(ANSWER);
      const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
      call.toTag = String(ok.headers.to.params.tag);
      call.ack();
      await eventOnce(dialog, 'confirmed');

      const terminated = eventOnce<[DialogEndReason]>(dialog, 'terminated');
      const result = dialog.bye();
      const [reason] = await terminated;
      assert.equal(reason, 'local-bye');
      const byeRx = await peer.waitFor((r) => !isResponse(r.msg) && (r.msg as SipRequest).method === 'BYE', 'our BYE');
      const bye = byeRx.msg as SipRequest;
      assert.equal(bye.headers['call-id'], call.callId);
      assert.equal(bye.headers.from.params.tag, dialog.localTag, 'From-tag is our To-tag');
      assert.equal(bye.headers.to.params.tag, call.fromTag, "To-tag is the peer's From-tag");
      assert.equal(bye.headers.cseq.method, 'BYE');
      assert.ok(Number.isInteger(bye.headers.cseq.seq) && bye.headers.cseq.seq > 0);
      assert.equal(bye.uri, `sip:1001@${HOST}:${contactSock.port}`, 'Request-URI is the remote target (Contact)');
      assert.equal(bye.headers.via.length, 1);
      assert.equal(bye.headers.via[0].port, uas.port);

      peer.send(responseTo(byeRx.raw, 200, 'OK'), uas.port);
      const status = await withTimeout(result, 3000, 'bye() to resolve');
      assert.equal(status, 200);
      assert.equal(contactSock.received.length, 0, 'nothing was sent to the Contact address');
      assert.equal(await dialog.bye(), 0, 'a second bye() sends nothing');
      await sleep(200);
      assert.equal(peer.requests((rq) => rq.method === 'BYE').length, 1);
    } finally {
      await contactSock.close();
    }
  });

  it("bye() resolves with whatever final status the peer answers (481)", async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    dialog.accept(ANSWER);
    const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
    call.toTag = String(ok.headers.to.params.tag);
    call.ack();
    await eventOnce(dialog, 'confirmed');
    const result = dialog.bye();
    const byeRx = await peer.waitFor((r) => !isResponse(r.msg) && (r.msg as SipRequest).method === 'BYE', 'our BYE');
    peer.send(responseTo(byeRx.raw, 100, 'Trying'), uas.port);
    peer.send(responseTo(byeRx.raw, 481, 'Call/Transaction Does Not Exist'), uas.port);
    assert.equal(await withTimeout(result, 3000, 'bye() to resolve'), 481);
  });

  it('bye() before the answer rejects the INVITE with 480 instead of sending a BYE', async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    assert.equal(await dialog.bye(), 480);
    const rs = await peer.waitForResponse(480, 'INVITE', call.cseq);
    assert.equal(rs.headers.to.params.tag, dialog.localTag);
    assert.equal(dialog.state, 'terminated');
    call.send(call.request('ACK', { branch: call.inviteBranch, toTag: dialog.localTag }));
    await sleep(200);
    assert.equal(peer.requests((rq) => rq.method === 'BYE').length, 0);
  });

  // The 2xx ACK timeout (Timer H, 32 s) is too long for a unit test and is not covered here.
});

/*
 * RFC 3261 §12 behind a proxy: the "PBX" socket plays the record-routing proxy (the INVITE comes
 * from it, so it is the dialog's flow); the Record-Route values name two proxies.
 */
describe('UasDialog route sets (RFC 3261 §12)', function () {
  this.timeout(20_000);
  let uas: Uas;
  let peer: Peer;
  const RR_LOOSE = ['Record-Route: <sip:10.9.0.1:5060;lr;r2=on;ftag=abc>, <sip:127.0.0.3:5070;lr;r2=on>', 'Record-Route: <sip:sbc2.example.invalid;lr>'];

  beforeEach(async () => {
    uas = await Uas.start();
    peer = await Peer.open();
    const probe = new Call(peer, uas);
    for (let i = 0; i < 50; i++) {
      probe.send(probe.request('OPTIONS', { cseq: i + 1, toTag: null }));
      const got = await peer.waitFor((r) => isResponse(r.msg) && r.msg.headers['call-id'] === probe.callId, 'OPTIONS 200', 100).catch(() => undefined);
      if (got) break;
    }
    peer.received.length = 0;
  });

  afterEach(async () => {
    uas.stop();
    await peer.close();
  });

  const rrLines = (raw: string): string[] => raw.split('\r\n\r\n')[0].split('\r\n').filter((l) => /^record-route\s*:/i.test(l));
  const routeUris = (rq: SipRequest): string[] => (rq.headers.route ?? []).map((r) => (typeof r.uri === 'string' ? r.uri : sip.stringifyUri(r.uri)));

  async function confirmed(call: Call, dialog: UasDialog): Promise<void> {
    dialog.accept(ANSWER);
    const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
    call.toTag = String(ok.headers.to.params.tag);
    call.ack();
    await eventOnce(dialog, 'confirmed');
  }

  it('copies the Record-Route values, in order, into the 180 and the 200', async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite(RR_LOOSE);
    dialog.provisional(180, 'Ringing');
    dialog.accept(ANSWER);
    const ringing = await peer.waitFor((r) => isResponse(r.msg) && r.msg.status === 180, '180');
    const ok = await peer.waitFor((r) => isResponse(r.msg) && r.msg.status === 200 && r.msg.headers.cseq.method === 'INVITE', '200');
    for (const rs of [ringing, ok]) {
      const uris = ((rs.msg as SipResponse).headers['record-route'] ?? []).map((r) => sip.stringifyUri(r.uri));
      assert.deepEqual(uris, ['sip:10.9.0.1:5060;lr;r2=on;ftag=abc', 'sip:127.0.0.3:5070;lr;r2=on', 'sip:sbc2.example.invalid;lr'], rrLines(rs.raw).join('\n'));
      assert.ok(Array.isArray((rs.msg as SipResponse).headers.contact), 'the 18x/2xx carries our Contact');
    }
    assert.deepEqual(dialog.routeSet.map((r) => r.uri), ['sip:10.9.0.1:5060;lr;r2=on;ftag=abc', 'sip:127.0.0.3:5070;lr;r2=on', 'sip:sbc2.example.invalid;lr']);
    call.toTag = dialog.localTag;
    call.ack();
    await eventOnce(dialog, 'confirmed');
  });

  it('a 200 without Record-Route in the INVITE carries none', async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite();
    dialog.accept(ANSWER);
    const ok = await peer.waitFor((r) => isResponse(r.msg) && r.msg.status === 200, '200');
    assert.deepEqual(rrLines(ok.raw), []);
    call.toTag = dialog.localTag;
    call.ack();
    await eventOnce(dialog, 'confirmed');
  });

  it('loose routing: our BYE goes over the flow with Request-URI = Contact and Route = the route set', async () => {
    const contactSock = await Peer.open();
    try {
      const call = new Call(peer, uas, contactSock.port);
      const dialog = await call.invite(RR_LOOSE);
      await confirmed(call, dialog);
      const result = dialog.bye();
      const byeRx = await peer.waitFor((r) => !isResponse(r.msg) && (r.msg as SipRequest).method === 'BYE', 'our BYE at the proxy');
      const bye = byeRx.msg as SipRequest;
      assert.equal(bye.uri, `sip:1001@${HOST}:${contactSock.port}`, 'Request-URI is the remote target');
      assert.deepEqual(routeUris(bye), ['sip:10.9.0.1:5060;lr;r2=on;ftag=abc', 'sip:127.0.0.3:5070;lr;r2=on', 'sip:sbc2.example.invalid;lr'], 'Route = route set, nothing of ours');
      peer.send(responseTo(byeRx.raw, 200, 'OK'), uas.port);
      assert.equal(await withTimeout(result, 3000, 'bye()'), 200);
      assert.equal(contactSock.received.length, 0, 'nothing sent to the Contact address');
    } finally {
      await contactSock.close();
    }
  });

  it('strict routing: Request-URI = first route, Route = the rest + the remote target', async () => {
    const contactSock = await Peer.open();
    try {
      const call = new Call(peer, uas, contactSock.port);
      const dialog = await call.invite(['Record-Route: <sip:strict.example.invalid:5080;transport=udp>, <sip:127.0.0.3:5070;lr>']);
      await confirmed(call, dialog);
      const result = dialog.bye();
      const byeRx = await peer.waitFor((r) => !isResponse(r.msg) && (r.msg as SipRequest).method === 'BYE', 'our BYE at the proxy');
      const bye = byeRx.msg as SipRequest;
      assert.equal(bye.uri, 'sip:strict.example.invalid:5080;transport=udp');
      assert.deepEqual(routeUris(bye), ['sip:127.0.0.3:5070;lr', `sip:1001@${HOST}:${contactSock.port}`]);
      peer.send(responseTo(byeRx.raw, 200, 'OK'), uas.port);
      assert.equal(await withTimeout(result, 3000, 'bye()'), 200);
      assert.equal(contactSock.received.length, 0);
    } finally {
      await contactSock.close();
    }
  });

  it("a re-INVITE's Contact becomes the remote target; the route set stays", async () => {
    const call = new Call(peer, uas);
    const dialog = await call.invite(RR_LOOSE);
    await confirmed(call, dialog);
    const reinvite = eventOnce<[SipRequest]>(dialog, 'reinvite');
    call.cseq++;
    const moved = call.request('INVITE', { body: OFFER, extra: ['Record-Route: <sip:elsewhere.invalid;lr>'] }).replace(/^Contact: .*$/m, `Contact: <sip:1001@10.9.0.2:5062>`);
    call.send(moved);
    const [rq] = await reinvite;
    dialog.answerReinvite(rq, { sdp: ANSWER2 });
    await peer.waitForResponse(200, 'INVITE', call.cseq);
    call.ack(call.cseq);
    assert.equal(dialog.remoteTargetUri, 'sip:1001@10.9.0.2:5062');
    const result = dialog.bye();
    const byeRx = await peer.waitFor((r) => !isResponse(r.msg) && (r.msg as SipRequest).method === 'BYE', 'our BYE');
    const bye = byeRx.msg as SipRequest;
    assert.equal(bye.uri, 'sip:1001@10.9.0.2:5062');
    assert.equal(routeUris(bye)[0], 'sip:10.9.0.1:5060;lr;r2=on;ftag=abc');
    assert.equal(routeUris(bye).length, 3);
    peer.send(responseTo(byeRx.raw, 200, 'OK'), uas.port);
    await withTimeout(result, 3000, 'bye()');
  });

  it('an ACK relayed by the proxy from another source stops the 2xx retransmissions', async () => {
    const proxyOut = await Peer.open();
    try {
      const call = new Call(peer, uas);
      const dialog = await call.invite(RR_LOOSE);
      dialog.accept(ANSWER);
      const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
      call.toTag = String(ok.headers.to.params.tag);
      const confirmedEv = eventOnce(dialog, 'confirmed');
      // The proxy's ACK: its own Via on top, sent from a different port than the INVITE came from.
      const ack = call
        .request('ACK', { extra: ['Route: <sip:ccedge.invalid;lr>'] })
        .replace(/^Via: .*$/m, (v) => `Via: SIP/2.0/UDP ${HOST}:${proxyOut.port};branch=${branch()}\r\n${v}`);
      proxyOut.send(ack, uas.port);
      await confirmedEv;
      const is2xx = (rs: SipResponse): boolean => rs.status === 200 && rs.headers.cseq.method === 'INVITE';
      const copies = peer.responses(is2xx).length;
      await sleep(2500);
      assert.equal(peer.responses(is2xx).length, copies, 'no 2xx copies after the relayed ACK');
      assert.equal(dialog.state, 'confirmed');
    } finally {
      await proxyOut.close();
    }
  });
});

/*
 * RFC 3515 from the referrer's side: our REFER to the PBX (an agent's transfer through it) and the
 * NOTIFYs of its implicit subscription. The "PBX" is the bare UDP socket; behind a record-routing
 * proxy the REFER must carry the route set like any in-dialog request.
 */
describe('UasDialog.refer(): REFER to the PBX and its NOTIFYs (RFC 3515)', function () {
  this.timeout(20_000);
  let uas: Uas;
  let peer: Peer;
  const RR = ['Record-Route: <sip:127.0.0.3:5070;lr;r2=on>, <sip:10.9.0.1:5060;lr>'];

  beforeEach(async () => {
    uas = await Uas.start();
    peer = await Peer.open();
    const probe = new Call(peer, uas);
    for (let i = 0; i < 50; i++) {
      probe.send(probe.request('OPTIONS', { cseq: i + 1, toTag: null }));
      const got = await peer.waitFor((r) => isResponse(r.msg) && r.msg.headers['call-id'] === probe.callId, 'OPTIONS 200', 100).catch(() => undefined);
      if (got) break;
    }
    peer.received.length = 0;
  });

  afterEach(async () => {
    uas.stop();
    await peer.close();
  });

  async function upCall(extra: string[] = []): Promise<{ call: Call; dialog: UasDialog }> {
    const call = new Call(peer, uas);
    const dialog = await call.invite(extra);
    dialog.accept(ANSWER);
    const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
    call.toTag = String(ok.headers.to.params.tag);
    call.ack();
    await eventOnce(dialog, 'confirmed');
    return { call, dialog };
  }

  /** The PBX's NOTIFY: next CSeq of its own, the given Event / Subscription-State / body. */
  function notify(call: Call, o: { event?: string | null; state?: string | null; body?: string; type?: string | null }): number {
    call.cseq++;
    const extra = [
      ...(o.event === null ? [] : [`Event: ${o.event ?? 'refer'}`]),
      ...(o.state === null ? [] : [`Subscription-State: ${o.state ?? 'active;expires=60'}`]),
    ];
    const body = o.body ?? '';
    const text = call.request('NOTIFY', { extra }).replace(/Content-Length: 0\r\n\r\n$/, () =>
      `${o.type === null ? '' : `Content-Type: ${o.type ?? 'message/sipfrag;version=2.0'}\r\n`}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    call.send(text);
    return call.cseq;
  }

  function progressEvents(dialog: UasDialog): Array<[number, boolean]> {
    const seen: Array<[number, boolean]> = [];
    dialog.on('referProgress', (status, final) => seen.push([status, final]));
    return seen;
  }

  async function referAt(call: Call, dialog: UasDialog, target: string, opts: Parameters<UasDialog['refer']>[1] = {}): Promise<{ rx: Received; result: Promise<number> }> {
    const result = dialog.refer(target, opts);
    const rx = await peer.waitFor((r) => !isResponse(r.msg) && (r.msg as SipRequest).method === 'REFER', 'our REFER');
    assert.equal((rx.msg as SipRequest).headers['call-id'], call.callId);
    return { rx, result };
  }

  const header = (raw: string, name: string): string | undefined =>
    raw.split('\r\n\r\n')[0].split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.replace(/^[^:]+:\s*/, '');

  it('sends REFER along the route set with Refer-To, Referred-By and Contact; 202; NOTIFY 100 then 200 become referProgress', async () => {
    const contactSock = await Peer.open();
    try {
      const call = new Call(peer, uas, contactSock.port);
      const dialog = await call.invite(RR);
      dialog.accept(ANSWER);
      const ok = await peer.waitForResponse(200, 'INVITE', call.cseq);
      call.toTag = String(ok.headers.to.params.tag);
      call.ack();
      await eventOnce(dialog, 'confirmed');
      const seen = progressEvents(dialog);
      const { rx, result } = await referAt(call, dialog, `sip:2002@${HOST}:5099`, { referredBy: 'sip:alice@ccedge.test' });
      const rq = rx.msg as SipRequest;
      assert.equal(rq.uri, `sip:1001@${HOST}:${contactSock.port}`, 'Request-URI = remote target');
      assert.deepEqual((rq.headers.route ?? []).map((r) => (typeof r.uri === 'string' ? r.uri : sip.stringifyUri(r.uri))), ['sip:127.0.0.3:5070;lr;r2=on', 'sip:10.9.0.1:5060;lr']);
      assert.equal(rq.headers.from.params.tag, dialog.localTag);
      assert.equal(rq.headers.to.params.tag, call.fromTag);
      assert.equal(header(rx.raw, 'Refer-To'), `<sip:2002@${HOST}:5099>`);
      assert.equal(header(rx.raw, 'Referred-By'), '<sip:alice@ccedge.test>');
      assert.match(header(rx.raw, 'Contact') ?? '', /sip:ccedge@/);
      assert.equal(contactSock.received.length, 0, 'sent over the flow, not to the Contact');
      peer.send(responseTo(rx.raw, 202, 'Accepted', call.fromTag), uas.port);
      assert.equal(await withTimeout(result, 3000, 'refer()'), 202);

      const referSeq = rq.headers.cseq.seq;
      const n1 = notify(call, { event: `refer;id=${referSeq}`, body: 'SIP/2.0 100 Trying\r\n' });
      await peer.waitForResponse(200, 'NOTIFY', n1);
      const n2 = notify(call, { event: `refer;id=${referSeq}`, state: 'terminated;reason=noresource', body: 'SIP/2.0 200 OK\r\nContent-Length: 0\r\n' });
      await peer.waitForResponse(200, 'NOTIFY', n2);
      assert.deepEqual(seen, [[100, false], [200, true]]);
      // The subscription is over: one more NOTIFY for it is 481, and a new REFER may start.
      const n3 = notify(call, { event: 'refer', state: 'terminated', body: 'SIP/2.0 200 OK\r\n' });
      await peer.waitForResponse(481, 'NOTIFY', n3);
      assert.equal(seen.length, 2);
      assert.equal(dialog.state, 'confirmed', 'the call stays up until we hang up');
    } finally {
      await contactSock.close();
    }
  });

  it('answers a malformed NOTIFY 400 (counted by notifyRejected) and still takes the good ones', async () => {
    const { call, dialog } = await upCall();
    const seen = progressEvents(dialog);
    const rejected: Array<[number, string]> = [];
    dialog.on('notifyRejected', (status, detail) => rejected.push([status, detail]));
    const { rx, result } = await referAt(call, dialog, 'tel:+4930123');
    assert.equal(header(rx.raw, 'Refer-To'), '<tel:+4930123>');
    peer.send(responseTo(rx.raw, 202, 'Accepted', call.fromTag), uas.port);
    await result;
    await peer.waitForResponse(400, 'NOTIFY', notify(call, { body: 'HTTP/1.1 200 OK\r\n' }));
    await peer.waitForResponse(400, 'NOTIFY', notify(call, { body: '' }));
    await peer.waitForResponse(400, 'NOTIFY', notify(call, { body: 'SIP/2.0 200 OK\r\n', type: 'text/plain' }));
    await peer.waitForResponse(400, 'NOTIFY', notify(call, { body: 'SIP/2.0 200 OK\r\n', state: null }));
    await peer.waitForResponse(489, 'NOTIFY', notify(call, { body: 'SIP/2.0 200 OK\r\n', event: 'dialog' }));
    await peer.waitForResponse(489, 'NOTIFY', notify(call, { body: 'SIP/2.0 200 OK\r\n', event: 'refer;id=1' }));
    assert.deepEqual(rejected.map(([s]) => s), [400, 400, 400, 400, 489, 489]);
    assert.match(rejected[0][1], /sipfrag status line/);
    assert.deepEqual(seen, [], 'no progress from a rejected NOTIFY');
    await peer.waitForResponse(200, 'NOTIFY', notify(call, { state: 'terminated', body: 'SIP/2.0 486 Busy Here\r\n' }));
    assert.deepEqual(seen, [[486, true]]);
  });

  it('takes a NOTIFY that overtakes the 202; a refused REFER resolves with its status and ends the subscription', async () => {
    const { call, dialog } = await upCall();
    const seen = progressEvents(dialog);
    const first = await referAt(call, dialog, `sip:2002@${HOST}`);
    await peer.waitForResponse(200, 'NOTIFY', notify(call, { body: 'SIP/2.0 100 Trying\r\n' }));
    peer.send(responseTo(first.rx.raw, 202, 'Accepted', call.fromTag), uas.port);
    assert.equal(await first.result, 202);
    await peer.waitForResponse(200, 'NOTIFY', notify(call, { state: 'terminated;reason=noresource', body: 'SIP/2.0 603 Declined\r\n' }));
    assert.deepEqual(seen, [[100, false], [603, true]]);

    peer.received.length = 0;
    const second = await referAt(call, dialog, `sip:2003@${HOST}`);
    peer.send(responseTo(second.rx.raw, 403, 'Forbidden', call.fromTag), uas.port);
    assert.equal(await second.result, 403);
    await peer.waitForResponse(481, 'NOTIFY', notify(call, { body: 'SIP/2.0 100 Trying\r\n' }));
    assert.equal(seen.length, 2, 'nothing reported for a refused REFER');
  });

  it('reports final 408 when no final NOTIFY comes within the bound; a late NOTIFY gets 481', async () => {
    const { call, dialog } = await upCall();
    const final = new Promise<[number, boolean]>((resolve) => dialog.on('referProgress', (s, f) => f && resolve([s, f])));
    const { rx, result } = await referAt(call, dialog, `sip:2002@${HOST}`, { finalTimeoutMs: 400 });
    peer.send(responseTo(rx.raw, 202, 'Accepted', call.fromTag), uas.port);
    await result;
    await peer.waitForResponse(200, 'NOTIFY', notify(call, { body: 'SIP/2.0 180 Ringing\r\n' }));
    assert.deepEqual(await withTimeout(final, 3000, 'final referProgress'), [408, true]);
    await peer.waitForResponse(481, 'NOTIFY', notify(call, { state: 'terminated', body: 'SIP/2.0 200 OK\r\n' }));
  });

  it('refuses with coded errors: before the call is up, a second REFER at once, an unusable target', async () => {
    const call = new Call(peer, uas);
    const early = await call.invite();
    await assert.rejects(early.refer(`sip:2002@${HOST}`), { code: 'SIP_DIALOG_NOT_CONFIRMED' });
    early.reject(486, 'Busy Here');

    const { call: up, dialog } = await upCall();
    await assert.rejects(dialog.refer('sip:2002@host>;x=<y'), { code: 'SIP_BAD_REFER_TARGET' });
    await assert.rejects(dialog.refer('http://example.invalid/'), { code: 'SIP_BAD_REFER_TARGET' });
    await assert.rejects(dialog.refer(`sip:2002@${HOST}`, { referredBy: 'alice\r\nX-Evil: 1' }), { code: 'SIP_BAD_REFER_TARGET' });
    const { rx, result } = await referAt(up, dialog, `sip:2002@${HOST}`);
    await assert.rejects(dialog.refer(`sip:2003@${HOST}`), { code: 'SIP_REFER_PENDING' });
    assert.equal(peer.requests((rq) => rq.method === 'REFER').length, 1, 'only the first REFER went out');
    peer.send(responseTo(rx.raw, 202, 'Accepted', up.fromTag), uas.port);
    await result;
  });

  it('answers a NOTIFY when no REFER of ours exists with 481', async () => {
    const { call, dialog } = await upCall();
    const rejected: number[] = [];
    dialog.on('notifyRejected', (status) => rejected.push(status));
    await peer.waitForResponse(481, 'NOTIFY', notify(call, { body: 'SIP/2.0 200 OK\r\n' }));
    assert.deepEqual(rejected, [481]);
  });
});
