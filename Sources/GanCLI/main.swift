import ArgumentParser
import Engine

Runtime.relaunchIfNeeded()
Runtime.configure()
GanCommand.main()
