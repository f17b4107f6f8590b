// WebAuthn ceremonies from the server's JSON options (PublicKeyCredential…OptionsJSON).
// Uses the native PublicKeyCredential.parse*OptionsFromJSON and credential.toJSON() when the
// browser has them, and an equivalent base64url conversion otherwise (older mobile browsers).

export class WebAuthnError extends Error {
  constructor(message, name = "WebAuthnError") {
    super(message);
    this.name = "WebAuthnError";
    this.domName = name;
  }
}

export function webauthnAvailable() {
  return typeof window.PublicKeyCredential === "function" && !!navigator.credentials;
}

function b64uToBuf(s) {
  let t = String(s).replace(/-/g, "+").replace(/_/g, "/");
  t += "=".repeat((4 - (t.length % 4)) % 4);
  const bin = atob(t);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function bufToB64u(buf) {
  if (buf === null || buf === undefined) return null;
  const bytes = new Uint8Array(buf);
  let bin = "";
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function descriptors(list) {
  return (list || []).map((d) => ({ ...d, id: b64uToBuf(d.id) }));
}

function parseCreation(o) {
  if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
    return PublicKeyCredential.parseCreationOptionsFromJSON(o);
  }
  return {
    ...o,
    challenge: b64uToBuf(o.challenge),
    user: { ...o.user, id: b64uToBuf(o.user.id) },
    excludeCredentials: descriptors(o.excludeCredentials),
  };
}

function parseRequest(o) {
  if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
    return PublicKeyCredential.parseRequestOptionsFromJSON(o);
  }
  return { ...o, challenge: b64uToBuf(o.challenge), allowCredentials: descriptors(o.allowCredentials) };
}

function credentialToJSON(cred) {
  if (typeof cred.toJSON === "function") return cred.toJSON();
  const r = cred.response;
  const response = { clientDataJSON: bufToB64u(r.clientDataJSON) };
  if ("attestationObject" in r) {
    response.attestationObject = bufToB64u(r.attestationObject);
    if (typeof r.getTransports === "function") response.transports = r.getTransports();
  } else {
    response.authenticatorData = bufToB64u(r.authenticatorData);
    response.signature = bufToB64u(r.signature);
    response.userHandle = bufToB64u(r.userHandle);
  }
  return {
    id: cred.id,
    rawId: bufToB64u(cred.rawId),
    type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment || null,
    response,
    clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
  };
}

function friendly(err, ceremony) {
  const name = err && err.name;
  switch (name) {
    case "NotAllowedError":
      return new WebAuthnError(
        ceremony === "create"
          ? "The passkey was not created: the request was cancelled or timed out."
          : "No passkey was used: the request was cancelled, timed out, or no passkey for this site was found.",
        name,
      );
    case "AbortError":
      return new WebAuthnError("The passkey request was cancelled.", name);
    case "InvalidStateError":
      return new WebAuthnError(
        ceremony === "create"
          ? "This authenticator already holds a passkey for your account."
          : "The passkey request could not start. Try again.",
        name,
      );
    case "SecurityError":
      return new WebAuthnError(
        "Passkeys are not available at this address. Open the gateway at its https (or localhost) address.",
        name,
      );
    case "NotSupportedError":
      return new WebAuthnError("This browser or authenticator does not support the requested passkey.", name);
    default:
      return new WebAuthnError(`The passkey request failed${err && err.message ? `: ${err.message}` : "."}`, name);
  }
}

function requireAvailable() {
  if (!webauthnAvailable()) {
    throw new WebAuthnError(
      "This browser cannot use passkeys here. Use a current browser over https (or localhost), " +
        "or sign in with an authenticator app.",
      "NotSupportedError",
    );
  }
}

/** Registration: options JSON from the server -> credential JSON for the server. */
export async function createCredential(optionsJSON) {
  requireAvailable();
  let cred;
  try {
    cred = await navigator.credentials.create({ publicKey: parseCreation(optionsJSON) });
  } catch (err) {
    throw friendly(err, "create");
  }
  if (!cred) throw new WebAuthnError("No passkey was created.");
  return credentialToJSON(cred);
}

/** Authentication: options JSON from the server -> assertion JSON for the server. */
export async function getAssertion(optionsJSON) {
  requireAvailable();
  let cred;
  try {
    cred = await navigator.credentials.get({ publicKey: parseRequest(optionsJSON) });
  } catch (err) {
    throw friendly(err, "get");
  }
  if (!cred) throw new WebAuthnError("No passkey was used.");
  return credentialToJSON(cred);
}
