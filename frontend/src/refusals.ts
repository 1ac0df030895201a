// A relayed action the node or the registry refused, said as a sentence for the person
// (node/api/routes/actions.py: the problem's detail names the contract's custom error).

import { ApiError } from "./api";
import { errorText } from "./view";

/** What the refused action was about: its subsystem and the account it named. */
export interface ActionContext {
  subsystem?: string;
  account?: string;
}

/** `registry rejected the call: LastSubsystemAdmin(main, 0x…)` -> `LastSubsystemAdmin`. */
const REVERT = /rejected the call: ([A-Za-z]\w*)\(/;

function revertSentence(name: string, { subsystem = "", account = "" }: ActionContext): string | null {
  const sub = subsystem ? `"${subsystem}"` : "this subsystem";
  const who = account || "That account";
  const sentences: Record<string, string> = {
    NotSubsystemAdmin: `Only an admin of ${sub} can do this, and your account is not one (any more): ask one of its admins.`,
    NotSystemAdmin: "Only a system admin can do this, and your account is not one.",
    UnknownSubsystem: `There is no subsystem ${sub} in the registry.`,
    AlreadySubsystemAdmin: `${who} is already an admin of ${sub}.`,
    AlreadySystemAdmin: `${who} is already a system admin.`,
    SubsystemAdminNotFound: `${who} is not an admin of ${sub}.`,
    SystemAdminNotFound: `${who} is not a system admin.`,
    LastSubsystemAdmin: `${who} is the last admin of ${sub}, and a subsystem always keeps one: add another admin first.`,
    LastSystemAdmin: `${who} is the last system admin, and the system always keeps one: add another first.`,
    AlreadyParticipant: `${who} is already a participant of ${sub}.`,
    ParticipantNotFound: `${who} is not a participant of ${sub}.`,
    JoinAlreadyPending: `You have already asked to join ${sub}; your request is pending.`,
    NoJoinRequest: `There is no pending request to join ${sub}: it was approved, denied or cancelled meanwhile.`,
    TooManyJoinRequests: `${sub} has too many pending join requests right now: try again later.`,
    ZeroAddress: "The zero address cannot be given this role.",
  };
  return sentences[name] ?? null;
}

/** Return a refused (or failed) signed action `e` as one sentence for the person. */
export function actionErrorText(e: unknown, context: ActionContext = {}): string {
  if (!(e instanceof ApiError)) return errorText(e);
  // the contract's error name: wherever the detail names a known one, else after "rejected the call:"
  const known = /\b([A-Z][A-Za-z]+)\(/g;
  for (const m of e.message.matchAll(known)) {
    const sentence = revertSentence(m[1], context);
    if (sentence) return sentence;
  }
  const reverted = REVERT.exec(e.message);
  if (reverted) return `The registry refused the change (${reverted[1]}); nothing changed.`;
  if (e.status === 409 && /nonce/.test(e.message))
    return "Another action of your account was relayed meanwhile: try again (your wallet signs it anew).";
  if (e.status === 429) return "Your account sent many actions in a short time: wait a few seconds and try again.";
  if (e.status === 400 && /deadline/.test(e.message)) return "The signature expired before it reached the registry: try again.";
  if (e.status >= 500) return `The node could not relay it (${e.status}): nothing changed, try again later.`;
  return `The node refused it: ${e.message}`;
}
