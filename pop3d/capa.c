/*
 * capa.c - the POP3 CAPA reply (RFC 2449), shared by the login process
 * (AUTHORIZATION state) and the mailbox session (TRANSACTION state).
 * RFC 2595 §4: USER and SASL PLAIN are not advertised where plaintext
 * passwords are refused (a non-TLS, non-loopback connection).
 */
#include "pop3.h"

void pop3_capa(const struct pop3_capa *c, strbuf *out)
{
    strbuf_appends(out, "+OK Capability list follows\r\n"
                        "TOP\r\n"
                        "UIDL\r\n"
                        "RESP-CODES\r\n"
                        "AUTH-RESP-CODE\r\n"
                        "PIPELINING\r\n");
    if (c->authorization) {
        if (c->plaintext_ok)
            strbuf_appends(out, "USER\r\nSASL PLAIN\r\n");
        if (c->stls)
            strbuf_appends(out, "STLS\r\n");
    }
    strbuf_appends(out, "IMPLEMENTATION Petrel\r\n.\r\n");
}
