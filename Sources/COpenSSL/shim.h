#ifndef MESHPROBE_COPENSSL_SHIM_H
#define MESHPROBE_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/bio.h>
#include <openssl/rand.h>
#include <openssl/bn.h>

// Small shims for OpenSSL macros that Swift cannot import.
static inline long mp_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long mp_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_max_proto_version(ctx, version);
}
static inline long mp_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
static inline long mp_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}
static inline long mp_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}
static inline size_t mp_BIO_ctrl_pending(BIO *bio) {
    return BIO_ctrl_pending(bio);
}
static inline long mp_BIO_set_mem_eof_return(BIO *bio, int v) {
    return BIO_set_mem_eof_return(bio, v);
}
static inline int mp_sk_X509_num(const STACK_OF(X509) *sk) { return sk_X509_num(sk); }
static inline X509 *mp_sk_X509_value(const STACK_OF(X509) *sk, int i) { return sk_X509_value(sk, i); }
static inline STACK_OF(X509) *mp_sk_X509_new_null(void) { return sk_X509_new_null(); }
static inline int mp_sk_X509_push(STACK_OF(X509) *sk, X509 *x) { return sk_X509_push(sk, x); }
static inline void mp_sk_X509_pop_free(STACK_OF(X509) *sk) { sk_X509_pop_free(sk, X509_free); }
static inline void mp_sk_X509_free(STACK_OF(X509) *sk) { sk_X509_free(sk); }
static inline int mp_sk_GENERAL_NAME_num(const STACK_OF(GENERAL_NAME) *sk) { return sk_GENERAL_NAME_num(sk); }
static inline GENERAL_NAME *mp_sk_GENERAL_NAME_value(const STACK_OF(GENERAL_NAME) *sk, int i) { return sk_GENERAL_NAME_value(sk, i); }
static inline void mp_GENERAL_NAMES_free(STACK_OF(GENERAL_NAME) *sk) { GENERAL_NAMES_free(sk); }
static inline int mp_SSL_get_ex_data_X509_STORE_CTX_idx(void) { return SSL_get_ex_data_X509_STORE_CTX_idx(); }
static inline int mp_SSL_get_ex_new_index(void) { return SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL); }

// Added for MeshprobeTLS: more macros and variadic functions Swift cannot import.
static inline long mp_SSL_CTX_add0_chain_cert(SSL_CTX *ctx, X509 *x509) { return SSL_CTX_add0_chain_cert(ctx, x509); }
static inline EVP_PKEY *mp_EVP_EC_gen_P256(void) { return EVP_EC_gen("P-256"); }
static inline unsigned long mp_XN_FLAG_RFC2253(void) { return XN_FLAG_RFC2253; }
static inline void mp_OPENSSL_free(void *p) { OPENSSL_free(p); }
static inline int mp_ERR_GET_REASON(unsigned long e) { return ERR_GET_REASON(e); }
static inline int mp_ERR_GET_LIB(unsigned long e) { return ERR_GET_LIB(e); }
static inline uint64_t mp_SSL_OP_NO_COMPRESSION_NO_RENEGOTIATION(void) { return SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION; }

#endif
