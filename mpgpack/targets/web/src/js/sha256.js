// The sha256 of fetched bytes, hex, as the manifests record it (crypto.subtle: secure contexts
// only, i.e. https, localhost or 127.0.0.1; callers check it exists).
export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
