#!/usr/bin/env bash
# Rebuild the extra benchmarks used to choose defaults (out of CI: each GAN takes minutes on a CPU).
#   bash benchmarks/build.sh OUT          (OUT: a folder outside the project; needs nibabel and the shared tools)
# Writes OUT/inia-slab, OUT/mni-slab8 (K = 8), OUT/mni-slab5 and OUT/ch2-slab128 (128 px; each + .truth.csv), second generators (twin-*) and
# other-architecture generators (upsample-*) of one subset of each benchmark. A killed build goes on from
# the next subset. The scenarios are then run by benchmarks/scenarios.py.
set -euo pipefail
OUT=$(realpath "${1:?usage: build.sh OUT}")
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED:-$HERE/../../shared/bench}
TOOLS=$SHARED/tools
PY=${PY:-python}
mkdir -p "$OUT"
cd "$OUT"
if [ ! -d volumes ]; then  # MRI templates from Debian's mricron-data, unpacked without installing
  apt-get download mricron-data && dpkg -x mricron-data_*.deb volumes && rm mricron-data_*.deb
fi
VOL=volumes/usr/share/mricron/templates
if [ ! -f volumes/mni152.nii.gz ]; then  # the MNI152 T1 template the nilearn wheel ships (another subject)
  $PY -m pip download -q --no-deps nilearn -d volumes/wheel
  unzip -p volumes/wheel/nilearn-*.whl 'nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz' > volumes/mni152.nii.gz
fi
build() {  # NAME VOLUME SPLIT SEED [extra args]: the shared tool's recipe, resumable subset by subset
  local name=$1 vol=$2 split=$3 seed=$4; shift 4
  [ -f "$name.truth.csv" ] || $PY "$HERE/build_resumable.py" --volume "$vol" --out "$name" --split "$split" --seed "$seed" "$@"
}
extra() {  # BENCH SUBSET: a second generator of the same recipe, and one of another architecture
  local bench=$1 k=$2 real
  if [ -d "$SHARED/$bench" ]; then real=$SHARED/$bench/real/t$k; else real=$OUT/$bench/real/t$k; fi
  [ -d "twin-$bench-t$k" ] || $PY "$HERE/twin_gan.py" --real "$real" --seed 77 --out "twin-$bench-t$k"  # extra_gan.py's, any size
  [ -d "upsample-$bench-t$k" ] || $PY "$HERE/upsample_gan.py" --real "$real" --seed 5 --out "upsample-$bench-t$k"
}
case "${2:-all}" in
  extras-shared) extra mri-slab 2; extra mri-random 2 ;;
  extras-inia) extra inia-slab 2 ;;
  extras-mni8) extra mni-slab8 2 ;;
  extras-ch2-128) extra ch2-slab128 2 ;;
  inia) build inia-slab "$VOL/inia19-t1-brain.nii.gz" slab 1; extra inia-slab 2 ;;
  mni8) build mni-slab8 volumes/mni152.nii.gz slab 3 --subsets 8 ;;  # K = 8, another subject
  mni5) build mni-slab5 volumes/mni152.nii.gz slab 5 ;;  # K = 5 of the same subject, built after every default was chosen
  ch2-128) build ch2-slab128 "$VOL/ch2better.nii.gz" slab 11 --size 128 ;;  # 128 px, the Colin27 subject of the shared benchmarks (its ch2better volume)
  all) extra mri-slab 2; extra mri-random 2; build inia-slab "$VOL/inia19-t1-brain.nii.gz" slab 1; extra inia-slab 2
       build mni-slab8 volumes/mni152.nii.gz slab 3 --subsets 8; extra mni-slab8 2
       build ch2-slab128 "$VOL/ch2better.nii.gz" slab 11 --size 128; extra ch2-slab128 2 ;;
esac
