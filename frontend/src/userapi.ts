// The API calls that depend on who the user is: signed with the session key (session.ts).

import { API, ApiError, type Me, readJson } from "./api";
import { signedFetch } from "./session";

/** Return the JSON of a signed `GET path`; throw ApiError (401 when not signed in) otherwise. */
export async function getUserJson<T>(path: string): Promise<T> {
  return readJson<T>(await signedFetch(path));
}

/** Return the JSON answer of a signed `POST path` with a JSON body; throw ApiError otherwise. */
export async function postUserJson<T>(path: string, body: unknown): Promise<T> {
  return readJson<T>(
    await signedFetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
}

/** Return the signed-in session, or null when there is none (401) or no sign-in API (404). */
export async function currentSession(): Promise<Me | null> {
  try {
    return await getUserJson<Me>(`${API}/auth/me`);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 404)) return null;
    throw e;
  }
}
