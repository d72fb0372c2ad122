#!/usr/bin/env bash
# The Debian packages the project needs beyond Python (make setup runs this):
#   LaTeX (the report): texlive-latex-recommended texlive-fonts-recommended
#                       texlive-latex-extra latexmk lmodern
#   PostgreSQL (the distributed search and its test): postgresql
# Installs what is missing with apt-get when it can (as root, or with sudo that needs no
# password); otherwise prints the command to run and fails.
set -euo pipefail
missing=()
command -v latexmk >/dev/null 2>&1 && command -v pdflatex >/dev/null 2>&1 \
  && kpsewhich lmodern.sty >/dev/null 2>&1 && kpsewhich booktabs.sty >/dev/null 2>&1 \
  || missing+=(texlive-latex-recommended texlive-fonts-recommended texlive-latex-extra
               latexmk lmodern)
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n);
else sudo=(none); fi
if [ "${sudo[*]}" = none ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: missing system packages; install them with:" >&2
  echo "  sudo apt-get install ${missing[*]}" >&2
  echo "(or their equivalents outside Debian), then run make again" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]} (log: /tmp/nnlib-apt.log)" >&2
{ "${sudo[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
    "${missing[@]}"; } > /tmp/nnlib-apt.log 2>&1 \
  || { echo "error: apt-get failed; see /tmp/nnlib-apt.log" >&2; exit 1; }
