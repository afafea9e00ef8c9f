import type { HwEventArgs } from '../hw';
import type { CloudEvent } from '../sync/events';

/**
 * hw/'s alarms and faults as cloud events (hw/ does not import sync/; the composition root maps).
 * A trunk alarm's line counters leave as top-level fields, as the catalogue lists them.
 */
export function hwCloudEvent(...event: HwEventArgs): CloudEvent<HwEventArgs[0]> {
  switch (event[0]) {
    case 'trunk.alarm': {
      const { counters, ...rest } = event[1];
      return { type: event[0], data: { ...rest, ...counters } };
    }
    case 'health.alarm':
      return { type: event[0], data: event[1] };
    case 'hw.fault':
      return { type: event[0], data: event[1] };
  }
}
