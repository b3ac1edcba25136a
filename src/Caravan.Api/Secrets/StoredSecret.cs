namespace Caravan.Api.Secrets;

/// <summary>
/// A secret as it is stored: the id of the master key it was encrypted under and
/// base64 of <c>nonce(12) || ciphertext || tag(16)</c>.
/// </summary>
public sealed record StoredSecret(string KeyId, string Ciphertext);
