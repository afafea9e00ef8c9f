/** The MQTT topic map (DESIGN.md "MQTT topics"): everything lives under ccedge/v1/<site>/<device>/. */
export const TOPIC_ID = /^[A-Za-z0-9_.-]{1,64}$/;

export function topicPrefix(siteId: string, deviceId: string): string {
  for (const [what, v] of [['site', siteId], ['device', deviceId]] as const) {
    if (!TOPIC_ID.test(v)) throw new Error(`${what} id "${v}" cannot be used in an MQTT topic (letters, digits, _ . - only)`);
  }
  return `ccedge/v1/${siteId}/${deviceId}/`;
}

export const TOPICS = {
  status: 'status',
  events: 'events',
  health: 'health',
  queue: (name: string): string => `queues/${name}`,
  cmdFilter: 'cmd/+',
  cmdResult: (id: string): string => `cmd-result/${id}`,
  configDesired: 'config/desired',
  configReported: 'config/reported',
} as const;
