"""Transcription: every recorded message drafted by offline speech recognition (vosk) for the
operators, whole-call recordings after them; the drafts and final transcripts searchable."""
