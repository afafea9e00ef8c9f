// Public surface of the media module for the gateway (composition root).
export { MediaError, type MediaErrorCode } from './errors';
export { parseRtp, parseRtpInto, newRtpParseResult, writeRtpHeader, RTP_HEADER_SIZE, type RtpHeader, type RtpParseResult } from './rtp/packet';
export { PortPool } from './rtp/port-pool';
export { RtpSession, type RtpSessionOptions, type RtpSessionStats } from './rtp/rtp-session';
export { Rfc4733Detector, encodeRfc4733, type DtmfDigit, type DtmfDigitEvent } from './dtmf/rfc4733';
export { linearToUlaw, ulawToLinear, linearToAlaw, alawToLinear, encodeFrame, SILENCE_BYTE, type G711Codec } from './tones/g711';
export { renderTone, HOLD_TONE, RINGBACK_TONE, BUSY_TONE, type ToneSpec, type ToneSegment } from './tones/tone';
export { MediaClock, type MediaClockOptions } from './tones/media-clock';
export { TonePlayer } from './tones/tone-player';
export { PromptPlayer, type PromptPlayback, type FrameSink } from './tones/prompt-player';
export { Goertzel, toneShareLinear, toneShareG711 } from './tones/goertzel';
export { loadPromptFrames, splitFrames } from './tones/prompt-file';
export { negotiateOffer, buildOffer, type Direction, type NegotiatedAudio, type AnswerOptions, type AudioCodec } from './sdp/negotiate';
export { decodeTable, encodeTable } from './tones/g711';
export { Mixer, MixerSlot, MIX_FRAME, type MixerSink, type MixerStats, type TickSource, type ParticipantRole, type ParticipantKind } from './mixer/mixer';
export { MediaJoint, type JointParticipant, type JointParticipantState, type JointMode, type JointStats } from './joint/media-joint';
export { type AudioPort, type RecordingTap } from './joint/audio-port';
export { CountingPort } from './joint/counting-port';
export { RtpSessionPort } from './joint/rtp-session-port';
// What the gateway and the composition root use of the media plane beyond the above.
export { DtmfSender } from './dtmf/dtmf-sender';
export { Recorder, type RecorderEvent, type RecordingSink } from './recorder/recorder';
export { RECORDING_CHANNELS, RECORDING_SAMPLE_RATE, WAV_HEADER_SIZE, g711WavHeader } from './recorder/wav';
export { AudioHookSession, type ForkEndReason, type ForkProblem } from './speech/audiohook/client';
export { type ForkConfig, type ForkEndpointConfig, addressAllowed, forkConfigSchema } from './speech/audiohook/config';
export { type Recognition, type Speaker, type SpeechEngine, type SpeechHypothesis, type TranscriptSink, type TranscriptUtterance } from './speech/contract';
export { Endpointer, type EndpointerOptions } from './speech/endpointer';
export { speechEngineConfigSchema } from './speech/engine-config';
export { isSpeechError } from './speech/errors';
export { type Grammar, buildGrammar, matchGrammar, normalisePhrase } from './speech/jsgf';
export { lineNoise } from './speech/line-noise';
export { PocketsphinxEngine } from './speech/pocketsphinx';
export { WebRtcLeg, type WebRtcLegState } from './webrtc/webrtc-leg';
export { type Joint } from './joint/joint';
export { MediaWorkers, MediaWorker, type MediaWorkersOptions } from './workers/media-workers';
export { RemoteRtpSession } from './workers/remote-rtp-session';
export { RemoteWebRtcLeg } from './workers/remote-webrtc-leg';
export {
  type RtpEndpoint,
  type SoundPlayer,
  type DigitSender,
  type WebRtcEndpoint,
  type WebRtcEndpointOptions,
  soundPlayer,
  digitSender,
  jointPort,
  promptPlayer,
  webrtcLeg,
  webrtcPort,
} from './workers/endpoint';
export { mediaConfigSchema, mediaWorkerCount, type MediaConfig } from './workers/config';
