/**
 * A process of werift agents for the WebRTC benchmark (one browser per call does not fit on the
 * box): logs the given agents in over the agent WebSocket, makes them available, answers every
 * call, and echoes every audio packet it receives back over the same DTLS-SRTP leg, so the load
 * generator on the SIP side measures the round trip through the daemon twice.
 *
 * IPC: parent → {type:'start', httpPort, agents: [{name, password}]}; child → {type:'ready'};
 * parent → {type:'status'}; child → {type:'status', connected, echoed};
 * parent → {type:'close'}; child → {type:'closed'}.
 */
import type { ServerMessage } from '../../gateway/agent-ui/protocol';
import { WeriftAgent } from '../../test/e2e/werift-agent';

interface Rtp {
  header: { timestamp: number };
  payload: Buffer;
}

type Msg = { type: 'start'; httpPort: number; agents: Array<{ name: string; password: string }> } | { type: 'status' } | { type: 'close' };

const agents: WeriftAgent[] = [];
const echoing = new Set<string>();
let echoed = 0;

function reply(m: Record<string, unknown>): void {
  process.send?.(m);
}

/** Once a call is connected, every received frame is sent straight back. */
async function echoCalls(agent: WeriftAgent): Promise<void> {
  let from = 0;
  for (;;) {
    const connected = await agent.waitFor<Extract<ServerMessage, { type: 'callConnected' }>>((m) => m.type === 'callConnected', 3_600_000, from);
    from = agent.inbox.indexOf(connected) + 1;
    const peer = agent.peer(connected.callId);
    if (!peer || echoing.has(connected.callId)) continue;
    echoing.add(connected.callId);
    const tracks = (peer.pc.getTransceivers()[0]?.receiver as unknown as { tracks: Array<{ onReceiveRtp: { subscribe(f: (rtp: Rtp) => void): void } }> }).tracks;
    for (const track of tracks) {
      track.onReceiveRtp.subscribe((rtp) => {
        echoed++;
        peer.sendAudio(Buffer.from(rtp.payload), rtp.header.timestamp);
      });
    }
    // The answerer also keeps a copy of everything it received; nothing here reads it.
    const timer = setInterval(() => (peer.received.length = 0), 1000);
    timer.unref();
  }
}

process.on('message', (msg: Msg) => {
  void (async () => {
    try {
      if (msg.type === 'start') {
        for (const a of msg.agents) {
          const agent = await WeriftAgent.login(msg.httpPort, a.name, a.password);
          agents.push(agent);
          agent.available();
          void echoCalls(agent).catch(() => undefined);
        }
        reply({ type: 'ready' });
      } else if (msg.type === 'status') {
        reply({ type: 'status', connected: echoing.size, echoed });
      } else if (msg.type === 'close') {
        await Promise.all(agents.map((a) => a.close().catch(() => undefined)));
        reply({ type: 'closed' });
        setTimeout(() => process.exit(0), 100);
      }
    } catch (e) {
      reply({ type: 'error', error: (e as Error).stack ?? String(e) });
    }
  })();
});
