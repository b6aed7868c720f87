#!/bin/sh
# tls-certs.sh: a throwaway CA and peer certificates for pvmigrated's mutual TLS (tests, demo, benchmarks)
#
# usage: tls-certs.sh DIR CA NAME...
# Makes DIR/CA.key, DIR/CA.crt (self-signed, CN=CA) and, for each NAME,
# DIR/NAME.key and DIR/NAME.crt signed by CA (CN=NAME).  EC P-256, valid
# one day: for a run on one machine, never for real peers.
set -eu
dir=${1:?usage: tls-certs.sh DIR CA NAME...}
ca=${2:?usage: tls-certs.sh DIR CA NAME...}
shift 2
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$1.key" 2>/dev/null; }
key "$ca"
openssl req -x509 -key "$dir/$ca.key" -out "$dir/$ca.crt" -subj "/CN=$ca" -days 1 2>/dev/null
for n in "$@"; do
	key "$n"
	openssl req -new -key "$dir/$n.key" -out "$dir/$n.csr" -subj "/CN=$n" 2>/dev/null
	openssl x509 -req -in "$dir/$n.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" -CAcreateserial \
		-out "$dir/$n.crt" -days 1 2>/dev/null
done
