import { connectAsync, type MqttClient } from 'mqtt';

export interface Received {
  topic: string;
  payload: Buffer;
  retain: boolean;
  /** Set when the broker redelivers a message the cloud did not acknowledge in time (its own leg). */
  dup: boolean;
}

/** The cloud side in tests: a persistent-session MQTT 5 client recording everything it gets. */
export class Cloud {
  readonly received: Received[] = [];
  private waiters: Array<() => void> = [];

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.received.push({ topic, payload, retain: packet.retain, dup: packet.dup });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async connect(port: number, subscriptions: string[], clientId = `cloud-${process.pid}-${Math.random().toString(16).slice(2)}`): Promise<Cloud> {
    const client = await connectAsync(`mqtt://127.0.0.1:${port}`, {
      clientId,
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 3600 },
      reconnectPeriod: 100,
      connectTimeout: 5000,
    });
    const cloud = new Cloud(client);
    if (subscriptions.length > 0) await client.subscribeAsync(subscriptions, { qos: 1 });
    return cloud;
  }

  on(topicEnd: string): Received[] {
    return this.received.filter((r) => r.topic.endsWith(topicEnd));
  }

  json<T = Record<string, unknown>>(topicEnd: string): T[] {
    return this.on(topicEnd).map((r) => JSON.parse(r.payload.toString()) as T);
  }

  /** Resolves once `pred()` holds (checked after each message), or rejects after timeoutMs. */
  async until(pred: () => boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred()) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async publish(topic: string, payload: string, opts: { retain?: boolean } = {}): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 1, retain: opts.retain ?? false });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

export async function waitFor(pred: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
