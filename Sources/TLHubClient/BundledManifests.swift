enum BundledManifests {
    static let files: [(name: String, json: String)] = []
}
