/*
 * A Parquet KmsClient holding master keys given in the Hadoop configuration, for reading
 * trialvault's encrypted Parquet exports in Spark without a KMS server (local runs, tests).
 *
 * It wraps and unwraps keys exactly as parquet-java's test class
 * org.apache.parquet.crypto.keytools.mocks.InMemoryKMS does — AES-GCM under the master key with
 * the master key's identifier as AAD (KeyToolkit.encryptKeyLocally) — and reads the same
 * property, parquet.encryption.key.list ("id1:base64key1, id2:base64key2"). That test class is
 * not shipped in Spark's jars, so trialvault compiles this one. On a real cluster use the TRE's
 * own KmsClient and put the export's master keys in its KMS (docs/spark.md).
 */
package uk.trialvault.parquet;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;

import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.crypto.KeyAccessDeniedException;
import org.apache.parquet.crypto.ParquetCryptoRuntimeException;
import org.apache.parquet.crypto.keytools.KeyToolkit;
import org.apache.parquet.crypto.keytools.KmsClient;

public class InMemoryKms implements KmsClient {
  public static final String KEY_LIST_PROPERTY_NAME = "parquet.encryption.key.list";

  private Map<String, byte[]> masterKeys = new HashMap<>();

  @Override
  public void initialize(Configuration configuration, String kmsInstanceID,
                         String kmsInstanceURL, String accessToken) {
    String[] entries = configuration.getTrimmedStrings(KEY_LIST_PROPERTY_NAME);
    if (entries == null || entries.length == 0) {
      throw new ParquetCryptoRuntimeException("No encryption key list");
    }
    Map<String, byte[]> keys = new HashMap<>();
    for (String entry : entries) {
      String[] parts = entry.split(":");
      if (parts.length != 2) {
        // Name the key, never print key material.
        throw new IllegalArgumentException("Key '" + parts[0].trim() + "' is not formatted correctly");
      }
      keys.put(parts[0].trim(), Base64.getDecoder().decode(parts[1].trim()));
    }
    masterKeys = keys;
  }

  private byte[] masterKey(String masterKeyIdentifier) {
    byte[] key = masterKeys.get(masterKeyIdentifier);
    if (key == null) {
      throw new ParquetCryptoRuntimeException("Key not found: " + masterKeyIdentifier);
    }
    return key;
  }

  @Override
  public String wrapKey(byte[] keyBytes, String masterKeyIdentifier)
      throws KeyAccessDeniedException {
    byte[] aad = masterKeyIdentifier.getBytes(StandardCharsets.UTF_8);
    return KeyToolkit.encryptKeyLocally(keyBytes, masterKey(masterKeyIdentifier), aad);
  }

  @Override
  public byte[] unwrapKey(String wrappedKey, String masterKeyIdentifier)
      throws KeyAccessDeniedException {
    byte[] aad = masterKeyIdentifier.getBytes(StandardCharsets.UTF_8);
    return KeyToolkit.decryptKeyLocally(wrappedKey, masterKey(masterKeyIdentifier), aad);
  }
}
