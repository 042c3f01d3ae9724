"""MQTT bus: events out, normalised odds and operator commands in (docs/mqtt.md).

Import from the modules (`bot.bus.bus.MqttBus`, `bot.bus.feed.MqttFeed`,
`bot.bus.commands.Controller`): this package is imported by bot.config.settings, so it stays light.
"""
