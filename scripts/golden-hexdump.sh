#!/usr/bin/env bash
# Writes every golden PDU (pdu/testdata/golden/*.hex) as a text2pcap hex dump into OUT (default
# /tmp/smppgw-golden) and, when text2pcap and tshark are installed (Debian: apt-get install tshark),
# turns each into a pcap and prints Wireshark's SMPP dissection of it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/smppgw-golden}
go run ./pdu/internal/goldendump -out "$out"
if command -v text2pcap >/dev/null && command -v tshark >/dev/null; then
  for f in "$out"/*.txt; do
    text2pcap -q -T 40000,2775 "$f" "${f%.txt}.pcap"
    echo "== ${f%.txt}.pcap"
    tshark -r "${f%.txt}.pcap" -d tcp.port==2775,smpp -O smpp
  done
else
  echo "text2pcap/tshark not installed: dumps written to $out (apt-get install tshark to dissect them)"
fi
