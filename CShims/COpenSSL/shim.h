#ifndef FLOWCHAIN_COPENSSL_SHIM_H
#define FLOWCHAIN_COPENSSL_SHIM_H

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/opensslv.h>

/// EVP_PKEY_ED25519 is a macro alias of NID_ED25519; exported as a constant Swift can see.
static inline int copenssl_EVP_PKEY_ED25519(void) { return EVP_PKEY_ED25519; }

#endif
