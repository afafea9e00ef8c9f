/** A soft ring tone made with WebAudio (no audio files, nothing fetched). Best effort only. */
export class Ringer {
  private ctx: AudioContext | null = null;
  private timer: number | undefined;
  /** 0..1, from the Ring volume setting. */
  volume = 0.6;

  /** One burst now, for the agent to set the volume. */
  test(): void {
    try {
      this.ctx ??= new AudioContext();
    } catch {
      return;
    }
    this.burst();
  }

  start(): void {
    if (this.timer !== undefined) return;
    try {
      this.ctx ??= new AudioContext();
      void this.ctx.resume().catch(() => undefined);
    } catch {
      return;
    }
    this.burst();
    this.timer = window.setInterval(() => this.burst(), 4000);
  }

  stop(): void {
    window.clearInterval(this.timer);
    this.timer = undefined;
    if (this.ctx && this.ctx.state === 'running') void this.ctx.suspend().catch(() => undefined);
  }

  /** Two short double-tone pulses (0.4 s on, 0.2 s off, 0.4 s on). */
  private burst(): void {
    const ctx = this.ctx;
    if (!ctx) return;
    if (ctx.state === 'suspended') void ctx.resume().catch(() => undefined);
    const t0 = ctx.currentTime + 0.05;
    for (const start of [t0, t0 + 0.6]) {
      const gain = ctx.createGain();
      gain.gain.setValueAtTime(0, start);
      // Up to 0.3: clearly audible over a headset at 100 %, the old fixed 0.06 at 20 %.
      const level = 0.3 * Math.max(0, Math.min(1, this.volume));
      gain.gain.linearRampToValueAtTime(level, start + 0.02);
      gain.gain.setValueAtTime(level, start + 0.38);
      gain.gain.linearRampToValueAtTime(0, start + 0.4);
      gain.connect(ctx.destination);
      for (const freq of [440, 480]) {
        const osc = ctx.createOscillator();
        osc.frequency.value = freq;
        osc.connect(gain);
        osc.start(start);
        osc.stop(start + 0.41);
      }
    }
  }
}
