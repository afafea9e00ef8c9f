/** A soft ring tone made with WebAudio (no audio files, nothing fetched). Best effort only. */
export class Ringer {
  private ctx: AudioContext | null = null;
  private timer: number | undefined;

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
      gain.gain.linearRampToValueAtTime(0.06, start + 0.02);
      gain.gain.setValueAtTime(0.06, start + 0.38);
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
