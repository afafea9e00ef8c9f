export { ivrSchema, ivrMenuSchema, ivrActionSchema, ivrConfigIssues, ivrIntentIssues, ivrSpeechIssues, ivrIntents, ivrPromptNames, speechSettings, speechMenuIntents, SPEECH_MENU_DEFAULTS } from './config';
export type { IvrConfig, IvrConfigInput, IvrMenu, IvrAction, IvrConfigIssue, SpeechMenuSettings } from './config';
export { IvrPrompts, generatedPrompt, generatedPromptSpec, transcodeFrames } from './prompts';
export type { PromptSource, PromptLog } from './prompts';
export { PromptPlayer } from './prompt-player';
export { IvrSession, realIvrTimers } from './ivr-session';
export type { IvrResult, IvrSessionEvents, IvrSessionOptions, IvrTimers, IvrTimer, DigitSource, DigitOrigin, IvrLog } from './ivr-session';
export { parseInfoDtmf } from './sip-info-dtmf';
