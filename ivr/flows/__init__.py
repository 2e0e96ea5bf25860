"""The call flows, written once against ivr.channel.Channel."""
