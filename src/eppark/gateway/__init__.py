"""The robot link: EP君's MQTT protocol, the embedded broker and the gateway process."""
