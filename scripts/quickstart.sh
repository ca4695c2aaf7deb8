#!/usr/bin/env bash
# tlhub quick start: the main job end to end on a fresh Debian machine with Swift 6.
#   pull a pretrained MobileNetV2 → inspect → convert to .safetensors → features → predict →
#   finetune a new head → predict and evaluate with the fine-tuned model
# When the real hub (storage.googleapis.com) is unreachable it says so and uses the bundled demo
# hub (scripts/demo_hub: a random-weight MobileNetV2 0.35/96 whose predictions mean nothing).
# Everything it writes goes to out/quickstart/ (git-ignored); downloads go to the cache (./cache).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

packages="libhdf5-dev libopenblas-dev libcurl4-openssl-dev libjpeg-dev libpng-dev libcairo2-dev fonts-dejavu-core pkg-config"
# shellcheck disable=SC2086
if ! dpkg -s $packages >/dev/null 2>&1; then
    step "installing C libraries: $packages"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $packages
fi

step "building tlhub (release)"
swift build -c release --static-swift-stdlib --product tlhub
tlhub=$(swift build -c release --show-bin-path)/tlhub
export TLHUB="$tlhub"
out=out/quickstart
mkdir -p "$out"

step "pull: MobileNetV2 0.35/96 with its ImageNet classifier"
model=$(scripts/demo_hub/pull.sh mobilenet_v2_035_96:top demo:mobilenet_v2_035_96)
case "$model" in
    */demo/*) class_index=$("$tlhub" pull --quiet --manifests scripts/demo_hub demo:demo_class_index) ;;
    *) class_index=$("$tlhub" pull --quiet imagenet_class_index) ;;
esac
echo "$model"

step "inspect"
"$tlhub" inspect "$model" > "$out/inspect.txt"
head -n 12 "$out/inspect.txt"; echo "… (full listing in $out/inspect.txt)"

step "convert to safetensors"
"$tlhub" convert "$model" -o "$out/mobilenet_v2.safetensors"
ls -l "$out/mobilenet_v2.safetensors"

images=(Tests/Fixtures/imaging/images/rgb.jpg Tests/Fixtures/imaging/images/progressive.jpg
        Tests/Fixtures/imaging/images/large.png Tests/Fixtures/imaging/images/palette.png)

step "features (avg-pooled, one row per image) → $out/features.csv"
"$tlhub" features --model "$out/mobilenet_v2.safetensors" --size 96 "${images[@]}" -o "$out/features.csv"
echo "$(wc -l < "$out/features.csv") rows × $(head -n 1 "$out/features.csv" | tr ',' '\n' | wc -l) features; images listed in $out/features.csv.files.txt"

step "predict (top 3)"
"$tlhub" predict --model "$out/mobilenet_v2.safetensors" --size 96 --class-index "$class_index" --top 3 "${images[@]}"

photos=Tests/Fixtures/finetune/photos
step "finetune: a new 3-class head on the model's outputs, trained on $photos (base features cached) → $out/finetuned"
"$tlhub" finetune --model "$model" --data "$photos/train" --val "$photos/validation" --head dense3 \
    --epochs 10 --lr 0.05 -o "$out/finetuned"

step "predict with the fine-tuned model"
"$tlhub" predict --model "$out/finetuned" --top 1 "$photos/validation/fish"

step "evaluate the fine-tuned model on the validation folder"
"$tlhub" evaluate --model "$out/finetuned" --data "$photos/validation"

step "done: outputs in $out/"
