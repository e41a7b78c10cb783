// Streaming SHA-256 of a File/Blob with the vendored hash-wasm (window.hashwasm):
// the file is read in blocks through Blob.slice, never whole, so a 2 GiB video hashes
// in constant memory.

export const BLOCK = 4 * 1024 * 1024;

/** `sha256:<hex>` of `blob`; `onProgress(bytesHashed, size)` after each block. */
export async function sha256OfBlob(blob, onProgress = () => {}) {
  const hasher = await window.hashwasm.createSHA256();
  hasher.init();
  for (let at = 0; at < blob.size; at += BLOCK) {
    const block = await blob.slice(at, Math.min(at + BLOCK, blob.size)).arrayBuffer();
    hasher.update(new Uint8Array(block));
    onProgress(Math.min(at + BLOCK, blob.size), blob.size);
  }
  onProgress(blob.size, blob.size);
  return "sha256:" + hasher.digest("hex");
}
